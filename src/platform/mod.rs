//! The one seam between the pipeline and a crowd-work platform: domain types in and out.
//!
//! The runner sees only this trait and [`PlatformError`]'s classes; how a platform's errors map
//! onto those classes is decided once, in its adapter.

mod mturk;

use std::fmt;
use std::future::Future;

pub use mturk::{
    CredentialSource, MturkPlatform, PRODUCTION_ENDPOINT, PlatformSetupError, SANDBOX_ENDPOINT,
};

use crate::ids::{AssignmentId, WorkerId};
use crate::money::Cents;

/// One bonus to send.
#[derive(Debug, Clone)]
pub struct BonusRequest {
    pub worker: WorkerId,
    pub assignment: AssignmentId,
    pub amount: Cents,
    pub reason: String,
    pub token: String,
}

/// A bonus the platform reports as paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidBonus {
    pub worker: String,
    pub assignment: String,
    pub amount: Option<Cents>,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    pub available: Cents,
    pub on_hold: Option<Cents>,
}

/// What kind of systemic failure stopped a batch: each has its own fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Systemic {
    InsufficientFunds,
    Credentials,
    AccountNotLinked,
}

/// How the pipeline must react to an error. Decided by the adapter, never by the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Too fast: slow down and try again.
    Throttled,
    /// Certainly not applied; safe to try again (5xx, service fault, refused connection).
    Retryable,
    /// Sent without an answer: it may have been applied. Retry only with the same token.
    Ambiguous,
    /// The platform says this request token was processed already.
    AlreadyDone,
    /// Wrong for this row (unknown assignment, invalid worker, ...): record and go on.
    Permanent,
    /// Wrong for every row: stop the batch and tell the user what to fix.
    Systemic(Systemic),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformError {
    pub class: ErrorClass,
    /// The platform's error code (`RequestError`, `ThrottlingException`, ...), if any.
    pub code: Option<String>,
    /// The platform's own message, kept verbatim for the report.
    pub message: String,
}

impl fmt::Display for PlatformError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(c) => write!(f, "{c}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PlatformError {}

/// A platform payout can pay through. Futures are `Send` so calls run on any runtime thread.
pub trait Platform: Send + Sync + 'static {
    /// Pays one bonus; the request's token makes a repeat harmless while the platform keeps it.
    fn send_bonus(
        &self,
        req: &BonusRequest,
    ) -> impl Future<Output = Result<(), PlatformError>> + Send;

    /// Every bonus paid for an assignment, all pages; none for an assignment the platform
    /// does not know.
    fn bonuses_for_assignment(
        &self,
        assignment: &AssignmentId,
    ) -> impl Future<Output = Result<Vec<PaidBonus>, PlatformError>> + Send;

    fn balance(&self) -> impl Future<Output = Result<Balance, PlatformError>> + Send;
}
