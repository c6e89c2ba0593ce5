//! The one seam between payout and a crowd-work platform: operations and probes in, domain
//! answers out. The engine sees only this trait and [`ErrorClass`]; how a platform's errors map
//! onto the classes is decided once, in its adapter (`mturk::classify`).
//!
//! # What an error proves
//!
//! A failed call to a *mutating* operation (a bonus, a score, a block) proves only what it
//! proves, and the classes say exactly that:
//!
//! | class | proves | the engine |
//! |---|---|---|
//! | [`ErrorClass::Throttled`] | refused before anything was applied (`ThrottlingException`, HTTP 429) | slows the shared pace, sends again |
//! | [`ErrorClass::NotSent`] | the request never reached the platform (connection refused, name not found, connect timeout) | sends again after a pause |
//! | [`ErrorClass::Refused`] | refused for this operation before applying it (validation and parameter errors, an unknown assignment or worker) | records it as failed — after verifying, if an earlier attempt may have applied it |
//! | [`ErrorClass::Systemic`] | refused for every operation (credentials, access denied, funds, account not linked, clock) | stops the batch, prints the fix |
//! | [`ErrorClass::AlreadyDone`] | the request token was processed already | verifies, then records it done |
//! | [`ErrorClass::Ambiguous`] | **nothing**: any 5xx (`ServiceFault`, a 500 after the write, a gateway's 502/503/504), a timeout or a dropped connection after the request was sent | marks it `unknown` and verifies it against the platform before it is ever sent again, in this run or any later one |
//!
//! Only answers that show the request was refused before it was applied leave an operation
//! plainly pending. A 5xx is never such an answer: a gateway timeout or a fault can come after
//! MTurk applied the call, and the 24-hour token window does not protect a resend made later.
//! For read-only calls every class but `Refused` and `Systemic` just means "try again".

pub mod aws_files;
mod chunked;
mod groups;
mod mturk;
pub(crate) use mturk::key_id_end;
pub mod prolific;

use std::fmt;
use std::future::Future;

pub use chunked::{ChunkRow, ChunkedPlatform, SetUpAnswer};
pub use groups::GroupPlatform;
pub use mturk::{
    CredentialSource, CredentialsUsed, MturkPlatform, PRODUCTION_ENDPOINT, PlatformSetupError,
    SANDBOX_ENDPOINT, ServerClock, Timeouts, bonus_fee, find_credentials,
};

use crate::ids::{AssignmentId, QualificationTypeId, WorkerId};
use crate::money::Cents;
use crate::op::Operation;

/// The platform's fee on an operation, if it costs one (MTurk: bonuses only).
pub fn fee_for(op: &Operation) -> Option<Cents> {
    op.amount().map(bonus_fee)
}

/// One call to make: an operation with its qualification type resolved and its token.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub op: &'a Operation,
    /// The type ID of a score's or revoke's qualification (names are resolved before a run).
    pub qualification: Option<&'a QualificationTypeId>,
    pub token: Option<&'a str>,
}

/// A bonus the platform lists as paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidBonus {
    pub worker: String,
    pub assignment: String,
    pub amount: Option<Cents>,
    pub reason: String,
}

/// A worker's standing on one qualification type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualScore {
    Granted(i32),
    Revoked,
    /// Never granted.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    pub available: Cents,
    pub on_hold: Option<Cents>,
}

/// An assignment as the platform knows it (for read-only preflight checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentInfo {
    pub worker: String,
    pub hit: String,
    pub status: String,
}

/// What kind of systemic failure stopped a batch: each has its own fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Systemic {
    InsufficientFunds,
    /// The access key is unknown or the secret does not match.
    Credentials,
    /// The IAM user lacks the MTurk policy.
    AccessDenied,
    AccountNotLinked,
    /// The computer's clock is too far from the platform's for signatures to be accepted.
    ClockSkew,
}

/// What an error proves about the call (see the module documentation). Decided by the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Throttled,
    NotSent,
    Ambiguous,
    AlreadyDone,
    Refused,
    Systemic(Systemic),
}

impl ErrorClass {
    /// Whether the call was certainly not applied.
    pub fn proves_not_applied(self) -> bool {
        matches!(
            self,
            ErrorClass::Throttled
                | ErrorClass::NotSent
                | ErrorClass::Refused
                | ErrorClass::Systemic(_)
        )
    }
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

/// A platform payout works through. Futures are `Send` so calls run on any runtime thread.
pub trait Platform: Send + Sync + 'static {
    /// Applies one operation. A bonus's token makes a repeat harmless while the platform
    /// keeps it; nothing else about a repeat is assumed.
    fn apply(&self, call: Call<'_>) -> impl Future<Output = Result<(), PlatformError>> + Send;

    /// Every bonus paid for an assignment, all pages; none for an assignment the platform
    /// does not know.
    fn bonuses_for_assignment(
        &self,
        assignment: &AssignmentId,
    ) -> impl Future<Output = Result<Vec<PaidBonus>, PlatformError>> + Send;

    /// A worker's standing on a qualification type.
    fn qualification_score(
        &self,
        worker: &WorkerId,
        qualification: &QualificationTypeId,
    ) -> impl Future<Output = Result<QualScore, PlatformError>> + Send;

    /// Every worker the requester has blocked, all pages.
    fn blocked_workers(&self) -> impl Future<Output = Result<Vec<String>, PlatformError>> + Send;

    fn balance(&self) -> impl Future<Output = Result<Balance, PlatformError>> + Send;

    /// The requester's own qualification type with exactly this name, if any.
    fn find_qualification_type(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<QualificationTypeId>, PlatformError>> + Send;

    /// Every worker granted `qualification` now, with their score, all pages — or `None` from
    /// a platform that cannot list them (ask [`Platform::qualification_score`] per worker).
    fn granted_workers(
        &self,
        qualification: &QualificationTypeId,
    ) -> impl Future<Output = Result<Option<Vec<(String, i32)>>, PlatformError>> + Send {
        let _ = qualification;
        std::future::ready(Ok(None))
    }

    /// Names of the requester's own types that the platform's search finds for `query`
    /// (near misses included), exactly as the platform stores them. A platform that cannot
    /// search answers none.
    fn qualification_type_names(
        &self,
        query: &str,
    ) -> impl Future<Output = Result<Vec<String>, PlatformError>> + Send {
        let _ = query;
        std::future::ready(Ok(Vec::new()))
    }

    /// Creates an active qualification type owned by the requester.
    fn create_qualification_type(
        &self,
        name: &str,
        description: &str,
    ) -> impl Future<Output = Result<QualificationTypeId, PlatformError>> + Send;

    /// An assignment, or `None` when the platform does not know it.
    fn assignment(
        &self,
        assignment: &AssignmentId,
    ) -> impl Future<Output = Result<Option<AssignmentInfo>, PlatformError>> + Send;
}
