//! The two envelopes an error answer comes in: MTurk's own (`RequestError`, `ServiceFault`,
//! `ParameterValidationError`: `Message` ending in a server timestamp, maybe a `TurkErrorCode`)
//! and the AWS front end's (validation, throttling, auth: a bare message). Which texts, codes
//! and statuses go into them is decided in `guesses.rs` or, where known, by the caller.

use hyper::StatusCode;

use super::guesses;

/// How an MTurk-layer message ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stamp {
    /// ` (1631094715163)`: server time in ms (RequestError, ServiceFault; H).
    Millis,
    /// ` (1585151438622 s)`: as seen live on ParameterValidationError.
    MillisS,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layer {
    /// MTurk's own error: `Message` with a timestamp, `TurkErrorCode` when there is one.
    Turk {
        stamp: Stamp,
        code: Option<&'static str>,
    },
    /// The AWS front end: the message as is, no timestamp, no `TurkErrorCode`.
    Front,
}

/// One error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub layer: Layer,
}

impl ApiError {
    pub fn front(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            layer: Layer::Front,
        }
    }

    pub fn turk(
        status: StatusCode,
        kind: &'static str,
        code: Option<&'static str>,
        stamp: Stamp,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            layer: Layer::Turk { stamp, code },
        }
    }

    /// `RequestError` (HTTP 400): the request is invalid.
    pub fn request(code: Option<&'static str>, message: impl Into<String>) -> ApiError {
        ApiError::turk(
            StatusCode::BAD_REQUEST,
            "RequestError",
            code,
            Stamp::Millis,
            message,
        )
    }

    /// `ValidationException` listing every violated constraint, as AWS's front end words it
    /// (H: mturk-api.md quotes one).
    pub fn validation(errors: &[String]) -> ApiError {
        let n = errors.len();
        let plural = if n == 1 { "error" } else { "errors" };
        ApiError::front(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            format!("{n} validation {plural} detected: {}", errors.join("; ")),
        )
    }

    /// `ThrottlingException`, `Rate exceeded`, HTTP 400 (H).
    pub fn throttling() -> ApiError {
        ApiError::front(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        )
    }

    /// The full message as sent: MTurk-layer messages get the server timestamp appended.
    pub fn full_message(&self, now_ms: u64) -> String {
        match self.layer {
            Layer::Turk {
                stamp: Stamp::Millis,
                ..
            } => format!("{} ({now_ms})", self.message),
            Layer::Turk {
                stamp: Stamp::MillisS,
                ..
            } => format!("{} ({now_ms} s)", self.message),
            Layer::Front => self.message.clone(),
        }
    }

    /// The JSON body.
    pub fn body(&self, now_ms: u64) -> String {
        let mut body = serde_json::Map::new();
        match self.layer {
            Layer::Turk { code, .. } => {
                body.insert("__type".into(), self.kind.into());
                body.insert("Message".into(), self.full_message(now_ms).into());
                if let Some(code) = code {
                    body.insert("TurkErrorCode".into(), code.into());
                }
            }
            Layer::Front => {
                body.insert("__type".into(), guesses::front_end_type(self.kind).into());
                if !self.message.is_empty() {
                    body.insert(
                        guesses::FRONT_END_MESSAGE_KEY.into(),
                        self.message.clone().into(),
                    );
                }
            }
        }
        serde_json::Value::Object(body).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turk_errors_carry_a_timestamp_and_code_front_errors_do_not() {
        let e = ApiError::request(
            Some("AWS.MechanicalTurk.AssignmentDoesNotExist"),
            "Assignment X does not exist.",
        );
        let v: serde_json::Value = serde_json::from_str(&e.body(1631094715163)).unwrap();
        assert_eq!(v["__type"], "RequestError");
        assert_eq!(v["Message"], "Assignment X does not exist. (1631094715163)");
        assert_eq!(
            v["TurkErrorCode"],
            "AWS.MechanicalTurk.AssignmentDoesNotExist"
        );

        let e = ApiError::validation(&["a".into(), "b".into()]);
        let v: serde_json::Value = serde_json::from_str(&e.body(1)).unwrap();
        assert_eq!(
            v[guesses::FRONT_END_MESSAGE_KEY],
            "2 validation errors detected: a; b"
        );
        assert!(v.get("TurkErrorCode").is_none());
    }

    #[test]
    fn a_turk_error_without_a_code_has_no_code_member_but_keeps_its_timestamp() {
        let e = ApiError::request(None, "x");
        let v: serde_json::Value = serde_json::from_str(&e.body(7)).unwrap();
        assert_eq!(v["Message"], "x (7)");
        assert!(v.get("TurkErrorCode").is_none());
        let e = ApiError::turk(
            StatusCode::BAD_REQUEST,
            "ParameterValidationError",
            None,
            Stamp::MillisS,
            "y",
        );
        assert_eq!(e.full_message(7), "y (7 s)");
    }
}
