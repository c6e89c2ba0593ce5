//! Every guess the Prolific emulator makes about what Prolific answers, in one place: each
//! unknown text, code, status, field or behaviour is named here with its confidence (as
//! `../shared/prolific-api.md` grades them: H documented, M one source or a strong inference,
//! L unknown) and its source. The rest of the emulator builds its answers from these.
//!
//! What is *not* here, because it is documented (docs.prolific.com, H): the paths, the
//! `Authorization: Token` header, the set-up request `{study_id, csv_bonuses}` and its 201
//! answer `{id, study, amount, fees, vat, total_amount}` in minor units, the pay's 202 and its
//! non-idempotence, the submission fields of `GET /submissions/{id}/`, the balance fields, the
//! participant-group fields, `PATCH` overwriting `participant_ids`, and the error envelope
//! `{"error": {status, error_code, title, detail, additional_information}}`.

use hyper::StatusCode;
use serde_json::{Value, json};

/// One error answer in Prolific's envelope. `detail` is a string or an object keyed by field.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_code: u32,
    pub title: &'static str,
    pub detail: Value,
}

impl ApiError {
    pub fn body(&self) -> String {
        json!({
            "error": {
                "status": self.status.as_u16(),
                "error_code": self.error_code,
                "title": self.title,
                "detail": self.detail,
                "additional_information": ADDITIONAL_INFORMATION,
            }
        })
        .to_string()
    }
}

impl ApiError {
    /// The other error shape, `{"message", "detail"}` (M: prolific-api.md, "some endpoints
    /// answer {message, detail}"; prolific-oss/cli decodes both as strings). L: which
    /// endpoints, so the emulator answers it for every error when `simple_errors` is set;
    /// `message` is the title, `detail` the detail as text.
    pub fn simple_body(&self) -> String {
        let detail = match &self.detail {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        json!({ "message": self.title, "detail": detail }).to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// The error envelope's unknowns
// ---------------------------------------------------------------------------------------------

/// `error_code`: a number (M: prolific-oss/cli decodes it as an int). Which numbers Prolific
/// uses is unknown (L); the emulator uses the HTTP status times 1000 plus a small index, so a
/// client that switches on `error_code` instead of the status fails here first.
const fn code(status: u16, n: u32) -> u32 {
    status as u32 * 1000 + n
}

/// `additional_information` (L for the text; M that it is a string: the CLI decodes one).
/// Prolific points at its docs; this is the emulator's stand-in.
pub const ADDITIONAL_INFORMATION: &str = "/api/v1/errors/";

/// `Token <token>` missing or not the header's scheme. L for the text: Django REST
/// framework's (which Prolific's API is built on, M: its paging and `detail` shapes) default.
pub fn not_authenticated() -> ApiError {
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        error_code: code(401, 0),
        title: "Not authenticated.",
        detail: json!("Authentication credentials were not provided."),
    }
}

/// A token the emulator was not seeded with. L: DRF's `TokenAuthentication` text.
pub fn invalid_token() -> ApiError {
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        error_code: code(401, 1),
        title: "Not authenticated.",
        detail: json!("Invalid token."),
    }
}

/// Any id that names nothing (study, submission, workspace, group, bulk payment), and a path
/// outside the API. M: "a 401/404 can mean no access"; the text is DRF's (L).
pub fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        error_code: code(404, 0),
        title: "Not found.",
        detail: json!("Not found."),
    }
}

/// A known path with a method it does not take. H for 405 (documented); L for the text.
pub fn method_not_allowed(method: &str) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        error_code: code(405, 0),
        title: "Method not allowed.",
        detail: json!(format!("Method \"{method}\" not allowed.")),
    }
}

/// A body that is not JSON, or a field missing or of the wrong type: 400 with `detail` keyed
/// by field (M: the envelope allows an object keyed by field; DRF's per-field lists of texts).
pub fn invalid_fields(fields: Vec<(&str, String)>) -> ApiError {
    let mut detail = serde_json::Map::new();
    for (field, text) in fields {
        detail.insert(field.to_owned(), json!([text]));
    }
    ApiError {
        status: StatusCode::BAD_REQUEST,
        error_code: code(400, 0),
        title: "Invalid request.",
        detail: Value::Object(detail),
    }
}

/// A page past the end of a `page`-paged list. M (prolific-api.md: "a page past the end
/// answers 404"); DRF's text (L).
pub fn invalid_page() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        error_code: code(404, 1),
        title: "Not found.",
        detail: json!("Invalid page."),
    }
}

/// A set-up whose ids did not all take part in the study. H for the 400 and for the answer
/// "explaining which IDs are incorrect"; L for the shape: `detail` keyed by `csv_bonuses`,
/// one text naming every bad id, comma-separated, in file order.
pub fn unknown_bonus_ids(ids: &[String]) -> ApiError {
    invalid_fields(vec![(
        "csv_bonuses",
        format!(
            "The following IDs did not take part in the study: {}",
            ids.join(", ")
        ),
    )])
}

/// A `csv_bonuses` line that is not `<id>,<amount>` with an amount above zero and at most two
/// decimals. L: Prolific's handling of more than 2 decimals, zero, negative amounts, currency
/// signs is undocumented; the emulator refuses the whole set-up, naming the line (1-based).
pub fn bad_bonus_line(line: usize, text: &str) -> ApiError {
    invalid_fields(vec![(
        "csv_bonuses",
        format!(
            "Line {line} is not <id>,<amount> with a positive amount of at most 2 decimals: {text:?}"
        ),
    )])
}

/// Two money calls in one workspace at once. H for 429 ("concurrent money operations get
/// 429"); L for the title and detail; no `Retry-After` (H: none is documented).
pub fn contention() -> ApiError {
    ApiError {
        status: StatusCode::TOO_MANY_REQUESTS,
        error_code: code(429, 0),
        title: "Too many requests.",
        detail: json!(
            "Another payment operation is in progress for this workspace. Try again later."
        ),
    }
}

/// A pay whose workspace's available balance does not cover the bulk's `total_amount`. L:
/// Prolific does not say whether such a pay fails at once or later, row by row. Guess: it fails
/// at once with 400 and nothing is queued (the set-up stays payable after a top-up).
pub fn insufficient_balance() -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        error_code: code(400, 1),
        title: "Insufficient balance.",
        detail: json!(
            "Your workspace does not have enough available balance to pay these bonuses."
        ),
    }
}

/// The fault "a set-up id that will not pay": the pay answers this and nothing lands. L for
/// everything: the status (400, as for the other refusals of a pay), title and detail.
pub fn will_not_pay() -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        error_code: code(400, 2),
        title: "Bonus payment failed.",
        detail: json!("This bulk bonus payment cannot be paid. Please contact support."),
    }
}

/// The fault "5xx after apply" in its JSON form. L: Prolific's own 500 body; the envelope's.
pub fn internal_error() -> ApiError {
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        error_code: code(500, 0),
        title: "Internal server error.",
        detail: json!("A server error occurred."),
    }
}

/// The fault "5xx after apply" in its proxy form: a 502 page from in front of the API, not
/// JSON (L: what Prolific's edge answers; any proxy's plain HTML page is the guess).
pub const BAD_GATEWAY_CONTENT_TYPE: &str = "text/html";
pub const BAD_GATEWAY_BODY: &str = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>\n";

// ---------------------------------------------------------------------------------------------
// Answers' unknowns
// ---------------------------------------------------------------------------------------------

/// The JSON string a pay answers with its 202. H that it is a JSON string; L for the words
/// (the docs describe the answer as "Successfully received bonus payments request. The bonuses
/// will be paid asynchronously.", used here as the string).
pub const PAY_ACCEPTED: &str =
    "Successfully received bonus payments request. The bonuses will be paid asynchronously.";

/// How money in minor units is written. H that amounts are JSON numbers in minor units that
/// can be fractional (`283.34`). L for whole values: written as integers (`850`, not
/// `850.0`). A client must accept both.
pub fn money(centi_minor: i64) -> Value {
    if centi_minor % 100 == 0 {
        json!(centi_minor / 100)
    } else {
        serde_json::Number::from_f64(centi_minor as f64 / 100.0)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// How fees are computed: a share of the set-up's summed `amount`, rounded **up** to 0.01 of a
/// minor unit; VAT a share of the fees, rounded the same way. M: two bonuses of 4.25 answer
/// `fees 283.34` (prolific-api.md), which is ⅓ of 850 rounded up; L whether Prolific computes
/// per row or per set-up (per set-up here).
pub fn share_rounded_up(centi_minor: i64, ppm: u64) -> i64 {
    let product = centi_minor as i128 * ppm as i128;
    ((product + 999_999) / 1_000_000) as i64
}

/// How integer balance fields show a balance that fractional fees left with a fraction of a
/// minor unit. L: rounded down.
pub fn whole_minor(centi_minor: i64) -> i64 {
    centi_minor.div_euclid(100)
}

/// A row given by participant ID when that participant has several submissions in the study.
/// L ("which submission a participant-ID row lands on" is undocumented): the latest started.
pub const PARTICIPANT_ROW_LANDS_ON: &str = "the participant's latest submission in the study";

/// Duplicate ids in one set-up (L): accepted, each line paid separately.
pub const DUPLICATE_IDS_IN_SETUP: &str = "accepted; each line is a separate payment";

/// Whether a set-up reserves funds or expires (L): neither. The balance moves only when a
/// paid bulk lands; the available-balance check is made at pay time against the balance
/// minus payments accepted but not landed yet.
pub const SETUP_RESERVES_FUNDS: bool = false;

/// Whether a pay answered 429 queued the payment (L: Prolific does not say). Guess: no, a 429
/// is refused before anything is applied. payout must not rely on it (it never resends a pay):
/// `ProlificConfig::contended_pay_applies` (`--contended-pay-applies`) plays the other answer.
pub const CONTENTION_QUEUES_PAY: bool = false;

/// Which lists carry which submission fields. `GET /submissions/{id}/` is documented (H:
/// `participant`, `study_id`, `bonus_payments`, ...). The study's list
/// (`/studies/{id}/submissions/`) carries `participant_id` and `bonus_payments` (M:
/// prolific-oss/cli's model of that list). The cross-study list (`/submissions/?study=`)
/// carries the same plus `study_id` (L: "basic information ... including study id,
/// participant id", field names guessed from the other two).
pub const LIST_SUBMISSION_PARTICIPANT_FIELD: &str = "participant_id";

/// Paging. `/submissions/` pages by `page`/`page_size` (H, default 20); the other lists by
/// `limit`/`offset` (M: prolific-oss/cli). Every list answers either. `_links` has `self`,
/// `next`, `previous`, `last`, each `{href, title}` with absolute URLs, `href` null when there
/// is none (M: the CLI's model; DRF's absolute URLs). These titles are L.
pub const LINK_TITLES: [&str; 4] = ["Current page", "Next page", "Previous page", "Last page"];

/// What a member add or remove answers. M (prolific-oss/cli expects 200 and decodes
/// `{"results": [{participant_id, datetime_created}]}`): the group's whole membership after
/// the change, unpaged (L whether it is paged).
pub const MEMBERS_CHANGE_STATUS: StatusCode = StatusCode::OK;

/// `DELETE /participant-groups/{id}/` (H that it is soft). L: answers 204 with no body; the
/// group keeps answering `GET` with `is_deleted: true`, leaves the group list, and its member
/// endpoints answer 404.
pub const GROUP_DELETE_STATUS: StatusCode = StatusCode::NO_CONTENT;

/// How a study names the groups it allows or blocks. M: a study `filters` entry
/// `{"filter_id": "participant_group_allowlist" | "participant_group_blocklist",
/// "selected_values": [group ids]}`.
pub const ALLOWLIST_FILTER: &str = "participant_group_allowlist";
pub const BLOCKLIST_FILTER: &str = "participant_group_blocklist";

/// `balance_breakdown` / `available_balance_breakdown` (H that they split rewards, fees and
/// VAT). L how a top-up is split between them: the emulator keeps one pool and shows it all as
/// `rewards`, with `fees` and `vat` 0.
pub const BREAKDOWN_IS_ONE_POOL: bool = true;

/// `GET /users/me/`: `balance` and `available_balance` (M: prolific-oss/cli) are those of the
/// user's first workspace (L).
pub const USER_BALANCE_IS_FIRST_WORKSPACE: bool = true;
