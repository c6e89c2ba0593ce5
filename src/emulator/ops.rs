//! The MTurk operations: decoding and validating each input (pure, outside the lock) and
//! applying it to the account state (inside the lock).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::errors::ApiError;
use super::guesses;
use super::ledger::PaymentRef;
use super::state::{AssignmentRec, QualType, QualificationGrant, QualificationStatus, State};
use crate::ids::{IdError, check_entity_id, check_worker_id};
use crate::money::Cents;

pub(crate) const TARGET_PREFIX: &str = "MTurkRequesterServiceV20170117.";

macro_rules! ops {
    ($($name:ident),* $(,)?) => {
        /// The operations the emulator implements.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Op { $($name),* }

        impl Op {
            pub fn from_name(name: &str) -> Option<Op> {
                match name {
                    $(stringify!($name) => Some(Op::$name),)*
                    _ => None,
                }
            }

            pub fn name(self) -> &'static str {
                match self {
                    $(Op::$name => stringify!($name),)*
                }
            }
        }
    };
}

ops!(
    GetAccountBalance,
    SendBonus,
    ListBonusPayments,
    GetAssignment,
    CreateQualificationType,
    GetQualificationType,
    ListQualificationTypes,
    AssociateQualificationWithWorker,
    DisassociateQualificationFromWorker,
    GetQualificationScore,
    ListWorkersWithQualificationType,
    CreateWorkerBlock,
    DeleteWorkerBlock,
    ListWorkerBlocks,
);

impl Op {
    /// Whether the operation changes anything (what `FaultScope::Mutating` limits faults to).
    pub fn is_mutating(self) -> bool {
        matches!(
            self,
            Op::SendBonus
                | Op::AssociateQualificationWithWorker
                | Op::DisassociateQualificationFromWorker
                | Op::CreateWorkerBlock
                | Op::DeleteWorkerBlock
                | Op::CreateQualificationType
        )
    }
}

impl Op {
    /// Whether a preflight reads it to check a row (what `FaultScope::Checks` limits faults to).
    pub fn is_check(self) -> bool {
        matches!(
            self,
            Op::GetAssignment | Op::ListBonusPayments | Op::GetQualificationScore
        )
    }
}

/// The stats key for anything that is not one of the operations above.
pub(crate) const UNKNOWN_OPERATION: &str = "UnknownOperation";

/// The operation named by an `X-Amz-Target` header.
pub(crate) fn op_from_target(target: Option<&str>) -> Option<Op> {
    target
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .and_then(Op::from_name)
}

const CURRENCY_PATTERN: &str = r"^[0-9]+(\.)?[0-9]{0,2}$";
const WORKER_PATTERN: &str = "^A[A-Z0-9]+$";
const ENTITY_PATTERN: &str = "^[A-Z0-9]+$";

/// Collects constraint violations the way the AWS front end reports them, all at once. Members
/// are given by their model name (`BonusAmount`) and quoted as the front end quotes them.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    /// `Value '<value>' at '<member>' failed to satisfy constraint: <constraint>` (H: the
    /// sentence mturk-api.md quotes; `Value null` for a missing member).
    fn violation(&mut self, value: Option<&dyn std::fmt::Display>, member: &str, constraint: &str) {
        let member = guesses::validation_member(member);
        let value = match value {
            Some(v) => format!("'{v}'"),
            None => "null".to_owned(),
        };
        self.0.push(format!(
            "Value {value} at '{member}' failed to satisfy constraint: {constraint}"
        ));
    }

    fn required<'a, T>(&mut self, member: &str, value: &'a Option<T>) -> Option<&'a T> {
        if value.is_none() {
            self.violation(None, member, "Member must not be null");
        }
        value.as_ref()
    }

    fn length(&mut self, member: &str, value: &str, min: usize, max: usize) -> bool {
        let n = value.chars().count();
        if n < min {
            self.violation(
                Some(&value),
                member,
                &format!("Member must have length greater than or equal to {min}"),
            );
        } else if n > max {
            self.violation(
                Some(&value),
                member,
                &format!("Member must have length less than or equal to {max}"),
            );
        } else {
            return true;
        }
        false
    }

    fn pattern(&mut self, member: &str, value: &str, pattern: &str) {
        self.violation(
            Some(&value),
            member,
            &format!("Member must satisfy regular expression pattern: {pattern}"),
        );
    }

    fn id(&mut self, member: &str, value: Option<&String>, worker: bool) {
        let Some(value) = value else { return };
        if !self.length(member, value, 1, 64) {
            return;
        }
        let (result, pattern) = if worker {
            (check_worker_id(value), WORKER_PATTERN)
        } else {
            (check_entity_id(value), ENTITY_PATTERN)
        };
        match result {
            Ok(()) => {}
            Err(IdError::TooLong) => {}
            Err(_) => self.pattern(member, value, pattern),
        }
    }

    fn range(&mut self, member: &str, value: Option<i32>, min: i32, max: i32) {
        match value {
            Some(v) if v < min => self.violation(
                Some(&v),
                member,
                &format!("Member must have value greater than or equal to {min}"),
            ),
            Some(v) if v > max => self.violation(
                Some(&v),
                member,
                &format!("Member must have value less than or equal to {max}"),
            ),
            _ => {}
        }
    }

    fn one_of(&mut self, member: &str, value: Option<&String>, allowed: &[&str]) {
        if let Some(v) = value
            && !allowed.contains(&v.as_str())
        {
            self.violation(
                Some(v),
                member,
                &format!(
                    "Member must satisfy enum value set: [{}]",
                    allowed.join(", ")
                ),
            );
        }
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(&self.0))
        }
    }
}

/// `^[0-9]+(\.)?[0-9]{0,2}$`, the model's `CurrencyAmount` pattern, checked literally (it
/// accepts `1.`, which `Cents::parse_amount` refuses on purpose).
fn matches_currency(text: &str) -> bool {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match text.split_once('.') {
        None => !text.is_empty() && digits(text),
        Some((whole, frac)) => {
            !whole.is_empty() && digits(whole) && frac.len() <= 2 && digits(frac)
        }
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // The SDKs always send at least `{}`; an empty body is read the same way.
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| guesses::serialization(&e.to_string(), !e.is_data()))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendBonusIn {
    worker_id: Option<String>,
    bonus_amount: Option<String>,
    assignment_id: Option<String>,
    reason: Option<String>,
    unique_request_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBonusPaymentsIn {
    #[serde(rename = "HITId")]
    hit_id: Option<String>,
    assignment_id: Option<String>,
    max_results: Option<i32>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssignmentIn {
    assignment_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateQualificationTypeIn {
    name: Option<String>,
    keywords: Option<String>,
    description: Option<String>,
    qualification_type_status: Option<String>,
    retry_delay_in_seconds: Option<i64>,
    test: Option<String>,
    answer_key: Option<String>,
    test_duration_in_seconds: Option<i64>,
    auto_granted: Option<bool>,
    auto_granted_value: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct QualificationTypeIdIn {
    qualification_type_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListQualificationTypesIn {
    query: Option<String>,
    must_be_requestable: Option<bool>,
    must_be_owned_by_caller: Option<bool>,
    next_token: Option<String>,
    max_results: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WorkerQualificationIn {
    qualification_type_id: Option<String>,
    worker_id: Option<String>,
    integer_value: Option<i32>,
    send_notification: Option<bool>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListWorkersIn {
    qualification_type_id: Option<String>,
    status: Option<String>,
    next_token: Option<String>,
    max_results: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PageIn {
    next_token: Option<String>,
    max_results: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WorkerBlockIn {
    worker_id: Option<String>,
    reason: Option<String>,
}

/// A decoded, validated request; only what the operation needs.
pub(crate) enum Request {
    GetAccountBalance,
    SendBonus {
        worker_id: String,
        amount: Cents,
        assignment_id: String,
        reason: String,
        token: Option<String>,
    },
    ListBonusPayments {
        hit_id: Option<String>,
        assignment_id: Option<String>,
        page: Page,
    },
    GetAssignment(String),
    CreateQualificationType(Box<QualType>),
    GetQualificationType(String),
    ListQualificationTypes {
        query: Option<String>,
        requestable: bool,
        owned: bool,
        page: Page,
    },
    Associate {
        type_id: String,
        worker_id: String,
        value: i32,
        notify: bool,
    },
    Disassociate {
        type_id: String,
        worker_id: String,
        reason: Option<String>,
    },
    GetQualificationScore {
        type_id: String,
        worker_id: String,
    },
    ListWorkers {
        type_id: String,
        status: Option<QualificationStatus>,
        page: Page,
    },
    CreateWorkerBlock {
        worker_id: String,
        reason: String,
    },
    DeleteWorkerBlock(String),
    ListWorkerBlocks(Page),
}

pub(crate) struct Page {
    max: usize,
    token: Option<String>,
}

fn page(checks: &mut Checks, max: Option<i32>, token: Option<String>) -> Page {
    checks.range("MaxResults", max, 1, 100);
    if let Some(t) = &token {
        checks.length("NextToken", t, 1, 255);
    }
    Page {
        max: max.map_or(guesses::DEFAULT_PAGE_SIZE, |m| m.clamp(1, 100) as usize),
        token,
    }
}

/// Decodes and validates a request body for `op`.
pub(crate) fn parse(op: Op, body: &[u8]) -> Result<Request, ApiError> {
    let mut c = Checks::default();
    let request = match op {
        Op::GetAccountBalance => Request::GetAccountBalance,
        Op::SendBonus => {
            let r: SendBonusIn = decode(body)?;
            c.required("WorkerId", &r.worker_id);
            c.required("BonusAmount", &r.bonus_amount);
            c.required("AssignmentId", &r.assignment_id);
            c.required("Reason", &r.reason);
            c.id("WorkerId", r.worker_id.as_ref(), true);
            c.id("AssignmentId", r.assignment_id.as_ref(), false);
            if let Some(a) = &r.bonus_amount
                && !matches_currency(a)
            {
                c.pattern("BonusAmount", a, CURRENCY_PATTERN);
            }
            if let Some(t) = &r.unique_request_token {
                c.length("UniqueRequestToken", t, 1, 64);
            }
            c.finish()?;
            let (Some(worker_id), Some(amount_text), Some(assignment_id), Some(reason)) =
                (r.worker_id, r.bonus_amount, r.assignment_id, r.reason)
            else {
                return Err(guesses::serialization("missing member", false));
            };
            // The pattern allows a trailing dot ("1."), which parse_amount refuses.
            let amount = match Cents::parse_amount(amount_text.trim_end_matches('.')) {
                Ok(a) if a > Cents::ZERO => a,
                _ => return Err(guesses::bonus_amount_invalid(&amount_text)),
            };
            Request::SendBonus {
                worker_id,
                amount,
                assignment_id,
                reason,
                token: r.unique_request_token,
            }
        }
        Op::ListBonusPayments => {
            let r: ListBonusPaymentsIn = decode(body)?;
            c.id("HITId", r.hit_id.as_ref(), false);
            c.id("AssignmentId", r.assignment_id.as_ref(), false);
            let page = page(&mut c, r.max_results, r.next_token);
            c.finish()?;
            if r.hit_id.is_some() == r.assignment_id.is_some() {
                return Err(guesses::invalid_parameter_combination());
            }
            Request::ListBonusPayments {
                hit_id: r.hit_id,
                assignment_id: r.assignment_id,
                page,
            }
        }
        Op::GetAssignment => {
            let r: AssignmentIn = decode(body)?;
            c.required("AssignmentId", &r.assignment_id);
            c.id("AssignmentId", r.assignment_id.as_ref(), false);
            c.finish()?;
            Request::GetAssignment(r.assignment_id.unwrap_or_default())
        }
        Op::CreateQualificationType => {
            let r: CreateQualificationTypeIn = decode(body)?;
            c.required("Name", &r.name);
            c.required("Description", &r.description);
            c.required("QualificationTypeStatus", &r.qualification_type_status);
            c.one_of(
                "QualificationTypeStatus",
                r.qualification_type_status.as_ref(),
                &["Active", "Inactive"],
            );
            c.finish()?;
            let auto_granted = r.auto_granted.unwrap_or(false);
            Request::CreateQualificationType(Box::new(QualType {
                id: String::new(),
                name: r.name.unwrap_or_default(),
                description: r.description.unwrap_or_default(),
                keywords: r.keywords,
                status: r.qualification_type_status.unwrap_or_default(),
                // A type can be requested by workers only if it has a test or grants itself.
                requestable: r.test.is_some() || auto_granted,
                owned: true,
                auto_granted,
                auto_granted_value: r.auto_granted_value,
                retry_delay: r.retry_delay_in_seconds,
                test: r.test,
                answer_key: r.answer_key,
                test_duration: r.test_duration_in_seconds,
                created_ms: 0,
            }))
        }
        Op::GetQualificationType => {
            let r: QualificationTypeIdIn = decode(body)?;
            c.required("QualificationTypeId", &r.qualification_type_id);
            c.id(
                "QualificationTypeId",
                r.qualification_type_id.as_ref(),
                false,
            );
            c.finish()?;
            Request::GetQualificationType(r.qualification_type_id.unwrap_or_default())
        }
        Op::ListQualificationTypes => {
            let r: ListQualificationTypesIn = decode(body)?;
            c.required("MustBeRequestable", &r.must_be_requestable);
            let page = page(&mut c, r.max_results, r.next_token);
            c.finish()?;
            Request::ListQualificationTypes {
                query: r.query,
                requestable: r.must_be_requestable.unwrap_or(false),
                owned: r.must_be_owned_by_caller.unwrap_or(false),
                page,
            }
        }
        Op::AssociateQualificationWithWorker
        | Op::DisassociateQualificationFromWorker
        | Op::GetQualificationScore => {
            let r: WorkerQualificationIn = decode(body)?;
            c.required("QualificationTypeId", &r.qualification_type_id);
            c.required("WorkerId", &r.worker_id);
            c.id(
                "QualificationTypeId",
                r.qualification_type_id.as_ref(),
                false,
            );
            c.id("WorkerId", r.worker_id.as_ref(), true);
            c.finish()?;
            let type_id = r.qualification_type_id.unwrap_or_default();
            let worker_id = r.worker_id.unwrap_or_default();
            match op {
                Op::AssociateQualificationWithWorker => Request::Associate {
                    type_id,
                    worker_id,
                    // MTurk's defaults: value 1, and the worker is emailed.
                    value: r.integer_value.unwrap_or(1),
                    notify: r.send_notification.unwrap_or(true),
                },
                Op::DisassociateQualificationFromWorker => Request::Disassociate {
                    type_id,
                    worker_id,
                    reason: r.reason,
                },
                _ => Request::GetQualificationScore { type_id, worker_id },
            }
        }
        Op::ListWorkersWithQualificationType => {
            let r: ListWorkersIn = decode(body)?;
            c.required("QualificationTypeId", &r.qualification_type_id);
            c.id(
                "QualificationTypeId",
                r.qualification_type_id.as_ref(),
                false,
            );
            c.one_of("Status", r.status.as_ref(), &["Granted", "Revoked"]);
            let page = page(&mut c, r.max_results, r.next_token);
            c.finish()?;
            Request::ListWorkers {
                type_id: r.qualification_type_id.unwrap_or_default(),
                status: r.status.map(|s| {
                    if s == "Revoked" {
                        QualificationStatus::Revoked
                    } else {
                        QualificationStatus::Granted
                    }
                }),
                page,
            }
        }
        Op::CreateWorkerBlock | Op::DeleteWorkerBlock => {
            let r: WorkerBlockIn = decode(body)?;
            c.required("WorkerId", &r.worker_id);
            if op == Op::CreateWorkerBlock {
                c.required("Reason", &r.reason);
            }
            c.id("WorkerId", r.worker_id.as_ref(), true);
            c.finish()?;
            let worker_id = r.worker_id.unwrap_or_default();
            if op == Op::CreateWorkerBlock {
                Request::CreateWorkerBlock {
                    worker_id,
                    reason: r.reason.unwrap_or_default(),
                }
            } else {
                Request::DeleteWorkerBlock(worker_id)
            }
        }
        Op::ListWorkerBlocks => {
            let r: PageIn = decode(body)?;
            let page = page(&mut c, r.max_results, r.next_token);
            c.finish()?;
            Request::ListWorkerBlocks(page)
        }
    };
    Ok(request)
}

/// Epoch seconds with milliseconds, as awsJson 1.1 carries timestamps.
fn epoch(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// A 30-character ID made of `[0-9A-F]`, like MTurk's (which are `[0-9A-Z]`).
fn derived_id(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    let mut id = String::from("3");
    id.push_str(&hex::encode_upper(h.finalize())[..29]);
    id
}

/// The HIT an assignment belongs to when nobody said: stable across runs.
pub(crate) fn default_hit_id(assignment_id: &str) -> String {
    derived_id(&[b"hit", assignment_id.as_bytes()])
}

fn fingerprint(text: &str) -> u32 {
    // FNV-1a: ties a NextToken to the query it came from.
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    h
}

/// One page of `items`. A page that is exactly full carries a NextToken even when nothing
/// follows (`guesses::TOKEN_ON_EXACTLY_FULL_PAGE`), and the page after it is empty with
/// `NumResults: 0` and no token. Skipping to the offset costs nothing on a slice iterator.
fn paginate<T>(
    items: impl IntoIterator<Item = T>,
    page: &Page,
    query: &str,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let fp = fingerprint(query);
    let offset = match &page.token {
        None => 0,
        Some(t) => t
            .split_once('-')
            .filter(|(_, f)| u32::from_str_radix(f, 16).ok() == Some(fp))
            .and_then(|(o, _)| o.parse::<usize>().ok())
            .ok_or_else(|| guesses::next_token_invalid(t))?,
    };
    let mut rest = items.into_iter().skip(offset).peekable();
    let items: Vec<T> = rest.by_ref().take(page.max).collect();
    let full = items.len() == page.max;
    let more = rest.peek().is_some();
    let short_last = !items.is_empty() && guesses::TOKEN_ON_SHORT_LAST_PAGE;
    let next = (more || (full && guesses::TOKEN_ON_EXACTLY_FULL_PAGE) || short_last)
        .then(|| format!("{}-{fp:08x}", offset + items.len()));
    Ok((items, next))
}

fn list_answer(key: &str, items: Vec<Value>, next: Option<String>) -> String {
    let mut out = serde_json::Map::new();
    out.insert("NumResults".into(), json!(items.len()));
    out.insert(key.into(), Value::Array(items));
    if let Some(t) = next {
        out.insert("NextToken".into(), json!(t));
    }
    Value::Object(out).to_string()
}

pub(crate) fn qual_type_json(t: &QualType) -> Value {
    let mut v = json!({
        "QualificationTypeId": t.id,
        "CreationTime": epoch(t.created_ms),
        "Name": t.name,
        "Description": t.description,
        "QualificationTypeStatus": t.status,
        "IsRequestable": t.requestable,
        "AutoGranted": t.auto_granted,
    });
    let obj = v.as_object_mut();
    if let Some(obj) = obj {
        if let Some(k) = &t.keywords {
            obj.insert("Keywords".into(), json!(k));
        }
        if let Some(x) = t.auto_granted_value {
            obj.insert("AutoGrantedValue".into(), json!(x));
        }
        if let Some(x) = t.retry_delay {
            obj.insert("RetryDelayInSeconds".into(), json!(x));
        }
        if let Some(x) = &t.test {
            obj.insert("Test".into(), json!(x));
        }
        if let Some(x) = &t.answer_key {
            obj.insert("AnswerKey".into(), json!(x));
        }
        if let Some(x) = t.test_duration {
            obj.insert("TestDurationInSeconds".into(), json!(x));
        }
    }
    v
}

fn qualification_json(q: &QualificationGrant) -> Value {
    json!({
        "QualificationTypeId": q.qualification_type_id,
        "WorkerId": q.worker_id,
        "GrantTime": epoch(q.grant_time_ms),
        "IntegerValue": q.integer_value,
        "Status": q.status.as_str(),
    })
}

impl State {
    /// In known mode, a worker who is not in the known list does not exist.
    fn check_worker(&self, worker_id: &str) -> Result<(), ApiError> {
        if self.known_mode && !self.known_workers.contains(worker_id) {
            return Err(guesses::parameter_invalid("WorkerId", worker_id));
        }
        Ok(())
    }

    fn owned_type(&self, type_id: &str) -> Result<&QualType, ApiError> {
        match self.qual_type(type_id) {
            None => Err(guesses::qualification_type_missing(type_id)),
            Some(t) if !t.owned => Err(guesses::qualification_type_not_owned(type_id)),
            Some(t) => Ok(t),
        }
    }

    /// Applies a validated request; returns the JSON answer.
    pub(crate) fn apply(&mut self, request: Request, now_ms: u64) -> Result<String, ApiError> {
        match request {
            // `AvailableBalance` alone, as MTurk's documented answer (guesses.rs).
            Request::GetAccountBalance => Ok(json!({
                "AvailableBalance": self.balance.to_api_string(),
            })
            .to_string()),
            Request::SendBonus {
                worker_id,
                amount,
                assignment_id,
                reason,
                token,
            } => self.send_bonus(worker_id, amount, assignment_id, reason, token, now_ms),
            Request::ListBonusPayments {
                hit_id,
                assignment_id,
                page,
            } => {
                if self.known_mode {
                    if let Some(a) = &assignment_id
                        && !self.assignments.contains_key(a)
                    {
                        return Err(guesses::assignment_missing(a));
                    }
                    if let Some(h) = &hit_id
                        && !self.known_hits.contains(h)
                    {
                        return Err(guesses::hit_missing(h));
                    }
                }
                // From the index: a page costs the page, not the ledger.
                let matching = match (&hit_id, &assignment_id) {
                    (Some(h), _) => self.ledger.for_hit(h),
                    (_, Some(a)) => self.ledger.for_assignment(a),
                    _ => &[],
                };
                let query = format!(
                    "bonus:{}:{}",
                    hit_id.as_deref().unwrap_or(""),
                    assignment_id.as_deref().unwrap_or("")
                );
                let (items, next) = paginate(matching, &page, &query)?;
                let items = items
                    .into_iter()
                    .map(|&i| {
                        let p = self.ledger.view(i);
                        json!({
                            "WorkerId": p.worker_id,
                            "BonusAmount": p.amount.to_api_string(),
                            "AssignmentId": p.assignment_id,
                            "Reason": p.reason,
                            "GrantTime": epoch(p.time_ms),
                        })
                    })
                    .collect();
                Ok(list_answer("BonusPayments", items, next))
            }
            Request::GetAssignment(id) => {
                let rec = self
                    .assignments
                    .get(&id)
                    .ok_or_else(|| guesses::assignment_missing(&id))?;
                let t = rec.seen_ms;
                Ok(json!({
                    "Assignment": {
                        "AssignmentId": id,
                        "WorkerId": rec.worker_id,
                        "HITId": rec.hit_id,
                        "AssignmentStatus": "Approved",
                        "AcceptTime": epoch(t.saturating_sub(600_000)),
                        "SubmitTime": epoch(t.saturating_sub(300_000)),
                        "ApprovalTime": epoch(t),
                        "AutoApprovalTime": epoch(t),
                    },
                    "HIT": { "HITId": rec.hit_id, "HITStatus": "Reviewable" },
                })
                .to_string())
            }
            Request::CreateQualificationType(mut t) => {
                if self.qual_types.iter().any(|q| q.owned && q.name == t.name) {
                    return Err(guesses::qualification_type_exists());
                }
                let n = self.qual_types.len() as u64;
                t.id = derived_id(&[
                    b"qualification-type",
                    &self.config.seed.to_le_bytes(),
                    &n.to_le_bytes(),
                    t.name.as_bytes(),
                ]);
                t.created_ms = now_ms;
                let answer = json!({ "QualificationType": qual_type_json(&t) }).to_string();
                self.qual_types.push(*t);
                Ok(answer)
            }
            Request::GetQualificationType(id) => {
                let t = self
                    .qual_type(&id)
                    .ok_or_else(|| guesses::qualification_type_missing(&id))?;
                Ok(json!({ "QualificationType": qual_type_json(t) }).to_string())
            }
            Request::ListQualificationTypes {
                query,
                requestable,
                owned,
                page,
            } => {
                // MTurk's Query is a search over name, description and keywords; a substring
                // match is a stricter stand-in that still returns near-miss names.
                let needle = query.as_deref().unwrap_or("").to_lowercase();
                let matching: Vec<&QualType> = self
                    .qual_types
                    .iter()
                    .filter(|t| !owned || t.owned)
                    .filter(|t| !requestable || t.requestable)
                    .filter(|t| {
                        needle.is_empty()
                            || t.name.to_lowercase().contains(&needle)
                            || t.description.to_lowercase().contains(&needle)
                            || t.keywords
                                .as_deref()
                                .is_some_and(|k| k.to_lowercase().contains(&needle))
                    })
                    .collect();
                let q = format!("types:{needle}:{requestable}:{owned}");
                let (items, next) = paginate(matching, &page, &q)?;
                let items = items.into_iter().map(qual_type_json).collect();
                Ok(list_answer("QualificationTypes", items, next))
            }
            Request::Associate {
                type_id,
                worker_id,
                value,
                notify,
            } => {
                self.owned_type(&type_id)?;
                self.check_worker(&worker_id)?;
                if notify {
                    *self
                        .notifications
                        .entry((worker_id.clone(), type_id.clone()))
                        .or_default() += 1;
                    self.stats.notifications += 1;
                }
                self.quals.insert(
                    (type_id.clone(), worker_id.clone()),
                    QualificationGrant {
                        qualification_type_id: type_id,
                        worker_id,
                        integer_value: value,
                        status: QualificationStatus::Granted,
                        send_notification: notify,
                        grant_time_ms: now_ms,
                        revoke_reason: None,
                    },
                );
                Ok("{}".into())
            }
            Request::Disassociate {
                type_id,
                worker_id,
                reason,
            } => {
                self.owned_type(&type_id)?;
                self.check_worker(&worker_id)?;
                match self.quals.get_mut(&(type_id, worker_id)) {
                    Some(q) if q.status == QualificationStatus::Granted => {
                        q.status = QualificationStatus::Revoked;
                        q.revoke_reason = reason;
                        Ok("{}".into())
                    }
                    _ => Err(guesses::qualification_missing()),
                }
            }
            Request::GetQualificationScore { type_id, worker_id } => {
                if self.qual_type(&type_id).is_none() {
                    return Err(guesses::qualification_type_missing(&type_id));
                }
                self.check_worker(&worker_id)?;
                match self.quals.get(&(type_id, worker_id.clone())) {
                    None => Err(guesses::qualification_missing()),
                    Some(q) if q.status == QualificationStatus::Revoked => {
                        Err(guesses::qualification_revoked(&worker_id))
                    }
                    Some(q) => Ok(json!({ "Qualification": qualification_json(q) }).to_string()),
                }
            }
            Request::ListWorkers {
                type_id,
                status,
                page,
            } => {
                self.owned_type(&type_id)?;
                // Without a Status, only granted ones (guesses.rs says why).
                let wanted = status.unwrap_or(guesses::LIST_WORKERS_DEFAULT_STATUS);
                let matching: Vec<&QualificationGrant> = self
                    .quals
                    .values()
                    .filter(|q| q.qualification_type_id == type_id && q.status == wanted)
                    .collect();
                let q = format!("workers:{type_id}:{status:?}");
                let (items, next) = paginate(matching, &page, &q)?;
                let items = items.into_iter().map(qualification_json).collect();
                Ok(list_answer("Qualifications", items, next))
            }
            Request::CreateWorkerBlock { worker_id, reason } => {
                self.check_worker(&worker_id)?;
                self.blocks.insert(worker_id, reason);
                Ok("{}".into())
            }
            Request::DeleteWorkerBlock(worker_id) => {
                self.check_worker(&worker_id)?;
                // Unblocking a worker who is not blocked succeeds (a guess: see guesses.rs).
                self.blocks.remove(&worker_id);
                Ok("{}".into())
            }
            Request::ListWorkerBlocks(page) => {
                // By worker ID: a stable order, so offsets in NextTokens stay meaningful.
                let (items, next) = paginate(&self.blocks, &page, "blocks")?;
                let items = items
                    .into_iter()
                    .map(|(worker, reason)| json!({ "WorkerId": worker, "Reason": reason }))
                    .collect();
                Ok(list_answer("WorkerBlocks", items, next))
            }
        }
    }

    fn send_bonus(
        &mut self,
        worker_id: String,
        amount: Cents,
        assignment_id: String,
        reason: String,
        token: Option<String>,
        now_ms: u64,
    ) -> Result<String, ApiError> {
        if let Some(t) = &token
            && self.tokens.is_repeat(t, now_ms)
        {
            return Err(guesses::duplicate_token(t));
        }
        let refused_token = token
            .as_ref()
            .filter(|_| guesses::REFUSED_CALL_USES_TOKEN)
            .cloned();
        let result = self.pay(worker_id, amount, assignment_id, reason, token, now_ms);
        if result.is_err()
            && let Some(t) = refused_token
        {
            self.tokens.record(t, now_ms);
        }
        result
    }

    /// SendBonus once the token is known to be fresh: checks, debits, records the payment.
    fn pay(
        &mut self,
        worker_id: String,
        amount: Cents,
        assignment_id: String,
        reason: String,
        token: Option<String>,
        now_ms: u64,
    ) -> Result<String, ApiError> {
        self.check_worker(&worker_id)?;
        let hit_id = match self.assignments.get(&assignment_id) {
            Some(rec) if rec.worker_id != worker_id => {
                return Err(guesses::worker_not_on_assignment(
                    &worker_id,
                    &assignment_id,
                ));
            }
            Some(rec) => rec.hit_id.clone(),
            None if self.known_mode => return Err(guesses::assignment_missing(&assignment_id)),
            None => default_hit_id(&assignment_id),
        };
        let fee = crate::platform::bonus_fee(amount);
        let total = amount + fee;
        let over_limit = self
            .config
            .spend_limit
            .is_some_and(|limit| self.spent + total > limit);
        if total > self.balance || over_limit {
            return Err(guesses::insufficient_funds());
        }
        self.balance = self.balance - total;
        self.spent += total;
        // A paid bonus always uses up its token (a refused one per REFUSED_CALL_USES_TOKEN).
        if let Some(t) = &token {
            self.tokens.record(t.clone(), now_ms);
        }
        if !self.assignments.contains_key(&assignment_id) {
            self.assignments.insert(
                assignment_id.clone(),
                AssignmentRec {
                    worker_id: worker_id.clone(),
                    hit_id: hit_id.clone(),
                    seen_ms: now_ms,
                },
            );
        }
        self.ledger.record(PaymentRef {
            worker_id: &worker_id,
            assignment_id: &assignment_id,
            hit_id: &hit_id,
            amount,
            reason: &reason,
            token: token.as_deref(),
            time_ms: now_ms,
        });
        self.stats.payments += 1;
        Ok("{}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_pattern_is_the_models() {
        for ok in ["1", "1.", "1.5", "1.23", "0.00", "123"] {
            assert!(matches_currency(ok), "{ok}");
        }
        for bad in ["", ".5", "1.234", "$1", "1,00", " 1", "-1", "1.2.3"] {
            assert!(!matches_currency(bad), "{bad}");
        }
    }

    #[test]
    fn bad_amount_is_a_validation_exception_with_awss_text() {
        let body = br#"{"WorkerId":"A1","BonusAmount":"1.234","AssignmentId":"X","Reason":"r"}"#;
        let Err(e) = parse(Op::SendBonus, body) else {
            panic!("accepted")
        };
        assert_eq!(e.kind, "ValidationException");
        assert_eq!(
            e.message,
            r"1 validation error detected: Value '1.234' at 'bonusAmount' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[0-9]+(\.)?[0-9]{0,2}$"
        );
    }

    #[test]
    fn missing_members_and_wrong_types() {
        let Err(e) = parse(Op::SendBonus, br#"{"WorkerId":"A1"}"#) else {
            panic!()
        };
        assert!(
            e.message
                .starts_with("3 validation errors detected: Value null at 'bonusAmount'")
        );
        let Err(e) = parse(Op::SendBonus, br#"{"WorkerId":5}"#) else {
            panic!()
        };
        assert_eq!(e.kind, "SerializationException");
        let Err(e) = parse(Op::SendBonus, b"{not json") else {
            panic!()
        };
        assert_eq!(e.kind, "SerializationException");
        let Err(e) = parse(Op::SendBonus, b"[]") else {
            panic!()
        };
        assert_eq!(e.kind, "SerializationException");
    }

    #[test]
    fn pages_carry_a_token_when_exactly_full() {
        let page = Page {
            max: 2,
            token: None,
        };
        let (items, next) = paginate(vec![1, 2, 3, 4], &page, "q").unwrap();
        assert_eq!(items, vec![1, 2]);
        let page = Page {
            max: 2,
            token: next,
        };
        let (items, next) = paginate(vec![1, 2, 3, 4], &page, "q").unwrap();
        assert_eq!(items, vec![3, 4]);
        assert!(next.is_some());
        let page2 = Page {
            max: 2,
            token: next.clone(),
        };
        let (items, last) = paginate(vec![1, 2, 3, 4], &page2, "q").unwrap();
        assert!(items.is_empty());
        assert_eq!(last, None);
        // A token from another query is refused.
        assert!(
            paginate(
                vec![1],
                &Page {
                    max: 2,
                    token: next
                },
                "other"
            )
            .is_err()
        );
    }
}
