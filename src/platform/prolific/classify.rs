//! The one place Prolific's answers are classified: what an HTTP status or a transport failure
//! proves about a call (see the table in `platform`), and the text kept from an error body.
//!
//! What a class then allows on a set-up or a pay is not decided here: that is
//! `engine::chunk_next` (a throttled pay, for one, is never sent again).

use crate::platform::{ErrorClass, PlatformError, Systemic};

/// How much of an error body is kept, verbatim, for the report.
const RAW_BODY_KEPT: usize = 2048;

/// What a status (not 2xx) proves.
pub fn classify_status(status: u16) -> ErrorClass {
    match status {
        // Prolific's contention answer: refused before applying — for reads and set-ups. (Its
        // docs do not say a 429'd pay was not queued; the chunk table does not resend it.)
        429 => ErrorClass::Throttled,
        401 => ErrorClass::Systemic(Systemic::Credentials),
        403 => ErrorClass::Systemic(Systemic::AccessDenied),
        // Validation, unknown ids and methods: refused for this call before applying it.
        400 | 404 | 405 | 409 | 422 => ErrorClass::Refused,
        // A 5xx (or anything else) after the request was sent proves nothing.
        _ => ErrorClass::Ambiguous,
    }
}

/// What a transport failure proves: only a connection never made shows nothing was sent.
pub fn classify_transport(e: &reqwest::Error) -> ErrorClass {
    if e.is_connect() {
        ErrorClass::NotSent
    } else {
        ErrorClass::Ambiguous
    }
}

/// Whether Prolific answered 404: the id in the path names nothing (a study, a group). Read
/// from what [`answer_error`] writes: its code (Prolific's, or `HTTP 404`) or its text.
pub fn is_not_found(e: &PlatformError) -> bool {
    e.code.as_deref() == Some("HTTP 404") || e.message.starts_with("HTTP 404")
}

/// The error for a failed answer: the status, Prolific's own title and detail (from either
/// body shape it uses), and the raw body.
pub fn answer_error(status: u16, body: &[u8]) -> PlatformError {
    let class = classify_status(status);
    let raw = String::from_utf8_lossy(&body[..body.len().min(RAW_BODY_KEPT)]).into_owned();
    let (code, text) = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => describe(&v),
        Err(_) => (None, None),
    };
    let message = match text {
        Some(t) => format!("HTTP {status}: {t} (body: {raw})"),
        None => format!("HTTP {status} (body: {raw})"),
    };
    PlatformError {
        class,
        code: code.or_else(|| Some(format!("HTTP {status}"))),
        message,
    }
}

fn detail_text(d: &serde_json::Value) -> Option<String> {
    match d {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        serde_json::Value::Array(a) => a
                            .iter()
                            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                            .collect::<Vec<_>>()
                            .join(" "),
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    format!("{k}: {v}")
                })
                .collect();
            Some(parts.join("; "))
        }
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// `{"error": {"error_code", "title", "detail"}}` or `{"message", "detail"}` or `{"detail"}`.
fn describe(v: &serde_json::Value) -> (Option<String>, Option<String>) {
    let inner = v.get("error").filter(|e| e.is_object()).unwrap_or(v);
    let code = inner.get("error_code").map(|c| match c {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let title = inner
        .get("title")
        .or_else(|| inner.get("message"))
        .and_then(|t| t.as_str())
        .map(str::to_owned);
    let detail = inner.get("detail").and_then(detail_text);
    let text = match (title, detail) {
        (Some(t), Some(d)) if t != d => Some(format!("{t}: {d}")),
        (Some(t), _) => Some(t),
        (None, d) => d,
    };
    (code, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_prove_what_they_prove() {
        assert_eq!(classify_status(429), ErrorClass::Throttled);
        assert_eq!(classify_status(400), ErrorClass::Refused);
        assert_eq!(classify_status(404), ErrorClass::Refused);
        assert_eq!(
            classify_status(401),
            ErrorClass::Systemic(Systemic::Credentials)
        );
        for s in [500, 502, 503, 504, 418] {
            assert_eq!(classify_status(s), ErrorClass::Ambiguous, "{s}");
        }
    }

    #[test]
    fn both_error_shapes_are_read_and_the_raw_body_kept() {
        let e = answer_error(
            400,
            br#"{"error":{"status":400,"error_code":140001,"title":"Bad request","detail":{"csv_bonuses":["The following IDs did not take part in the study: abc"]}}}"#,
        );
        assert_eq!(e.class, ErrorClass::Refused);
        assert_eq!(e.code.as_deref(), Some("140001"));
        assert!(
            e.message.contains(
                "Bad request: csv_bonuses: The following IDs did not take part in the study: abc"
            ),
            "{}",
            e.message
        );
        assert!(e.message.contains("\"status\":400"));
        let e = answer_error(404, br#"{"message":"Not found","detail":"No such study."}"#);
        assert!(
            e.message.contains("Not found: No such study."),
            "{}",
            e.message
        );
        let e = answer_error(502, b"<html>Bad gateway</html>");
        assert_eq!(e.class, ErrorClass::Ambiguous);
        assert!(e.message.contains("<html>Bad gateway</html>"));
    }
}
