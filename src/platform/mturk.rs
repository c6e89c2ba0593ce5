//! The MTurk adapter: `aws-sdk-mturk` behind the [`Platform`] trait, and the one place where
//! MTurk's errors are sorted into the classes the runner acts on.

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_sdk_mturk::Client;
use aws_sdk_mturk::config::http::HttpResponse;
use aws_sdk_mturk::config::retry::RetryConfig;
use aws_sdk_mturk::config::timeout::TimeoutConfig;
use aws_sdk_mturk::config::{BehaviorVersion, Credentials, ProvideCredentials, Region};
use aws_sdk_mturk::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::{Balance, BonusRequest, ErrorClass, PaidBonus, Platform, PlatformError, Systemic};
use crate::ids::AssignmentId;
use crate::money::Cents;

pub const SANDBOX_ENDPOINT: &str = "https://mturk-requester-sandbox.us-east-1.amazonaws.com";
pub const PRODUCTION_ENDPOINT: &str = "https://mturk-requester.us-east-1.amazonaws.com";

/// Pages of `ListBonusPayments` read at most for one assignment (100 payments a page).
const MAX_PAGES: usize = 1000;

/// Where the keys come from.
#[derive(Clone)]
pub enum CredentialSource {
    /// Environment variables, then the shared credentials/config files (optionally a profile).
    /// Instance, container and SSO providers are left out on purpose: they hand out temporary
    /// credentials, which MTurk refuses, and they would reach for the network to find them.
    Standard { profile: Option<String> },
    /// Fixed keys, for the emulator.
    Fixed {
        access_key_id: String,
        secret_access_key: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformSetupError {
    #[error("no AWS credentials found ({0})")]
    NoCredentials(String),
    #[error("the AWS credentials found are temporary (they carry a session token)")]
    TemporaryCredentials,
}

pub struct MturkPlatform {
    client: Client,
}

impl MturkPlatform {
    /// Resolves credentials once and builds a client with the SDK's retries off: payout owns
    /// every retry so that every attempt is journaled.
    pub async fn connect(
        endpoint: &str,
        credentials: CredentialSource,
        call_timeout: Duration,
    ) -> Result<MturkPlatform, PlatformSetupError> {
        let creds = match credentials {
            CredentialSource::Fixed {
                access_key_id,
                secret_access_key,
            } => Credentials::new(access_key_id, secret_access_key, None, None, "payout"),
            CredentialSource::Standard { profile } => {
                let mut files = ProfileFileCredentialsProvider::builder();
                if let Some(p) = profile {
                    files = files.profile_name(p);
                }
                let chain = CredentialsProviderChain::first_try(
                    "Environment",
                    EnvironmentVariableCredentialsProvider::new(),
                )
                .or_else("Profile", files.build());
                let creds = chain.provide_credentials().await.map_err(|e| {
                    PlatformSetupError::NoCredentials(DisplayErrorContext(e).to_string())
                })?;
                if creds.session_token().is_some() {
                    return Err(PlatformSetupError::TemporaryCredentials);
                }
                creds
            }
        };
        let conf = aws_sdk_mturk::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(call_timeout)
                    .build(),
            )
            .build();
        Ok(MturkPlatform {
            client: Client::from_conf(conf),
        })
    }
}

impl Platform for MturkPlatform {
    async fn send_bonus(&self, req: &BonusRequest) -> Result<(), PlatformError> {
        self.client
            .send_bonus()
            .worker_id(req.worker.as_str())
            .assignment_id(req.assignment.as_str())
            .bonus_amount(req.amount.to_api_string())
            .reason(&req.reason)
            .unique_request_token(&req.token)
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn bonuses_for_assignment(
        &self,
        assignment: &AssignmentId,
    ) -> Result<Vec<PaidBonus>, PlatformError> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .list_bonus_payments()
                .assignment_id(assignment.as_str())
                .max_results(100)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(classify);
            let page = match page {
                Ok(page) => page,
                // An assignment MTurk does not know has had no bonus paid for it.
                Err(e)
                    if e.class == ErrorClass::Permanent && e.message.contains("does not exist") =>
                {
                    return Ok(out);
                }
                Err(e) => return Err(e),
            };
            for b in page.bonus_payments() {
                out.push(PaidBonus {
                    worker: b.worker_id().unwrap_or_default().to_owned(),
                    assignment: b.assignment_id().unwrap_or_default().to_owned(),
                    amount: b.bonus_amount().and_then(|a| Cents::parse_amount(a).ok()),
                    reason: b.reason().unwrap_or_default().to_owned(),
                });
            }
            // MTurk may hand back a token on the last page; an empty page ends the list too.
            match page.next_token() {
                Some(t)
                    if page.num_results().unwrap_or(0) > 0 && !page.bonus_payments().is_empty() =>
                {
                    next = Some(t.to_owned());
                }
                _ => return Ok(out),
            }
        }
        Ok(out)
    }

    async fn balance(&self) -> Result<Balance, PlatformError> {
        let out = self
            .client
            .get_account_balance()
            .send()
            .await
            .map_err(classify)?;
        let parse = |s: Option<&str>| s.and_then(|s| Cents::parse_amount(s).ok());
        let available = parse(out.available_balance()).ok_or_else(|| PlatformError {
            class: ErrorClass::Retryable,
            code: None,
            message: format!(
                "MTurk answered an unreadable balance: {:?}",
                out.available_balance()
            ),
        })?;
        Ok(Balance {
            available,
            on_hold: parse(out.on_hold_balance()),
        })
    }
}

/// Sorts an SDK error into the class the runner acts on.
fn classify<E>(err: SdkError<E, HttpResponse>) -> PlatformError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let turk_code = ctx
                .raw()
                .body()
                .bytes()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v.get("TurkErrorCode")?.as_str().map(str::to_owned));
            let code = ctx.err().code().map(str::to_owned);
            let message = ctx
                .err()
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("HTTP {status} without a message"));
            let class = classify_answer(status, code.as_deref(), turk_code.as_deref(), &message);
            PlatformError {
                class,
                code,
                message,
            }
        }
        SdkError::TimeoutError(_) => PlatformError {
            class: ErrorClass::Ambiguous,
            code: None,
            message: "no answer in time; the call may or may not have been applied".into(),
        },
        e @ SdkError::ConstructionFailure(_) => PlatformError {
            class: ErrorClass::Permanent,
            code: None,
            message: format!("the request could not be built: {}", DisplayErrorContext(e)),
        },
        // A dropped connection or an unreadable answer: the request may have been applied.
        other => PlatformError {
            class: ErrorClass::Ambiguous,
            code: None,
            message: format!("connection failed: {}", DisplayErrorContext(other)),
        },
    }
}

/// The classification table for an answer MTurk did give.
fn classify_answer(
    status: u16,
    code: Option<&str>,
    turk: Option<&str>,
    message: &str,
) -> ErrorClass {
    let lower = message.to_ascii_lowercase();
    let code = code.unwrap_or("");
    if code.contains("Throttling") || status == 429 || lower.contains("rate exceeded") {
        return ErrorClass::Throttled;
    }
    if lower.contains("idempotency token") && lower.contains("already been processed") {
        return ErrorClass::AlreadyDone;
    }
    if lower.contains("insufficient funds") {
        return ErrorClass::Systemic(Systemic::InsufficientFunds);
    }
    const CREDENTIAL_CODES: &[&str] = &[
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "IncompleteSignatureException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "AccessDeniedException",
    ];
    if CREDENTIAL_CODES.contains(&code) {
        return ErrorClass::Systemic(Systemic::Credentials);
    }
    // The exact answer for an AWS account not linked to a requester account is not documented;
    // these are the forms reported publicly. A miss here only means each row fails alike.
    if turk == Some("AWS.NotAuthorized")
        || lower.contains("requester.mturk.com/developer")
        || (lower.contains("link") && lower.contains("requester account"))
    {
        return ErrorClass::Systemic(Systemic::AccountNotLinked);
    }
    if code == "ServiceFault" || code == "ServiceUnavailable" || status >= 500 {
        return ErrorClass::Retryable;
    }
    ErrorClass::Permanent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        use super::super::Systemic as S;
        use ErrorClass::*;
        let c = |status, code: &str, msg: &str| classify_answer(status, Some(code), None, msg);
        assert_eq!(c(400, "ThrottlingException", "Rate exceeded"), Throttled);
        assert_eq!(c(503, "ServiceUnavailable", "slow down"), Retryable);
        assert_eq!(
            c(500, "ServiceFault", "try again (1631094715163)"),
            Retryable
        );
        assert_eq!(
            c(
                400,
                "RequestError",
                "The idempotency token \"t\" has already been processed. (1)"
            ),
            AlreadyDone
        );
        assert_eq!(
            c(
                400,
                "RequestError",
                "This Requester has insufficient funds in their account to complete this transaction."
            ),
            Systemic(S::InsufficientFunds)
        );
        assert_eq!(
            c(
                400,
                "UnrecognizedClientException",
                "The security token included in the request is invalid."
            ),
            Systemic(S::Credentials)
        );
        assert_eq!(
            c(400, "RequestError", "Assignment X does not exist. (1)"),
            Permanent
        );
        assert_eq!(
            c(
                400,
                "ParameterValidationError",
                "The value \"A1\" is not valid for the parameter WorkerId."
            ),
            Permanent
        );
        assert_eq!(
            c(400, "ValidationException", "1 validation error detected"),
            Permanent
        );
        assert_eq!(
            classify_answer(400, Some("RequestError"), Some("AWS.NotAuthorized"), "no"),
            Systemic(S::AccountNotLinked)
        );
    }
}
