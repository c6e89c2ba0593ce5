//! Error answers in the shapes MTurk (RequestError, ServiceFault, ParameterValidationError) and
//! the AWS JSON front end (ValidationException, ThrottlingException, auth errors) give them.

use hyper::StatusCode;

/// One error answer. MTurk-layer errors carry a `TurkErrorCode` and a message ending in
/// ` (<server time ms>)`; AWS front-end errors carry neither, as seen live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub turk_code: Option<&'static str>,
}

impl ApiError {
    fn front(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            turk_code: None,
        }
    }

    /// `RequestError`: the request is invalid (HTTP 400).
    pub fn request(turk_code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "RequestError",
            message: message.into(),
            turk_code: Some(turk_code),
        }
    }

    /// `ParameterValidationError` (unmodeled, seen live for unknown worker IDs).
    pub fn parameter(parameter: &str, value: &str) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            kind: "ParameterValidationError",
            message: format!("The value \"{value}\" is not valid for the parameter {parameter}."),
            // The live TurkErrorCode for this is not known; this one is plausible.
            turk_code: Some("AWS.ParameterOutOfRange"),
        }
    }

    /// `ServiceFault` (HTTP 500): temporary, nothing was applied.
    pub fn service_fault() -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: "ServiceFault",
            message: "We encountered an internal error. Please try the request again.".into(),
            turk_code: Some("AWS.ServiceUnavailable"),
        }
    }

    /// `ValidationException` listing every violated constraint, AWS style.
    pub fn validation(errors: &[String]) -> ApiError {
        let n = errors.len();
        let plural = if n == 1 { "error" } else { "errors" };
        ApiError::front(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            format!("{n} validation {plural} detected: {}", errors.join("; ")),
        )
    }

    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::front(StatusCode::BAD_REQUEST, "SerializationException", message)
    }

    pub fn unknown_operation() -> ApiError {
        ApiError::front(StatusCode::BAD_REQUEST, "UnknownOperationException", "")
    }

    pub fn throttling() -> ApiError {
        ApiError::front(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        )
    }

    pub fn missing_authentication() -> ApiError {
        ApiError::front(
            StatusCode::BAD_REQUEST,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )
    }

    pub fn incomplete_signature(message: impl Into<String>) -> ApiError {
        ApiError::front(
            StatusCode::BAD_REQUEST,
            "IncompleteSignatureException",
            message,
        )
    }

    pub fn unrecognized_client() -> ApiError {
        ApiError::front(
            StatusCode::BAD_REQUEST,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    }

    pub fn invalid_signature(message: impl Into<String>) -> ApiError {
        ApiError::front(
            StatusCode::BAD_REQUEST,
            "InvalidSignatureException",
            message,
        )
    }

    /// The full message as sent: MTurk-layer messages get the server timestamp appended.
    pub fn full_message(&self, now_ms: u64) -> String {
        if self.turk_code.is_some() {
            format!("{} ({now_ms})", self.message)
        } else {
            self.message.clone()
        }
    }

    /// The JSON body.
    pub fn body(&self, now_ms: u64) -> String {
        let mut body = serde_json::Map::new();
        body.insert("__type".into(), self.kind.into());
        body.insert("Message".into(), self.full_message(now_ms).into());
        if let Some(code) = self.turk_code {
            body.insert("TurkErrorCode".into(), code.into());
        }
        serde_json::Value::Object(body).to_string()
    }

    /// `x-amzn-query-error`: `<code>;Sender` for client errors, `;Receiver` for faults.
    pub fn query_error_header(&self) -> String {
        let side = if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        format!("{};{side}", self.turk_code.unwrap_or(self.kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turk_errors_carry_a_timestamp_and_code_front_errors_do_not() {
        let e = ApiError::request(
            "AWS.MechanicalTurk.AssignmentDoesNotExist",
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
        assert_eq!(v["Message"], "2 validation errors detected: a; b");
        assert!(v.get("TurkErrorCode").is_none());
    }
}
