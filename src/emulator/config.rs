//! The emulator's configuration and the `WorkerId,AssignmentId,HITId` CSV that fixes which
//! assignments exist.

use std::io;
use std::path::Path;
use std::time::Duration;

use crate::ids::{check_entity_id, check_worker_id};
use crate::money::Cents;

/// How the emulator behaves. `Default` is a well-behaved MTurk with $10,000.00 and no faults.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Starting balance.
    pub balance: Cents,
    /// Seed of the single RNG behind jitter and fault picks, so runs are reproducible.
    pub seed: u64,
    /// Fixed latency added to every API answer.
    pub latency: Duration,
    /// Plus a uniform `0..latency_jitter`.
    pub latency_jitter: Duration,
    /// More than this many API requests admitted in the last second → `ThrottlingException`.
    pub throttle_rps: Option<u32>,
    /// Fraction of API requests answered `500 ServiceFault` without being applied.
    pub fault_rate: f64,
    /// Fraction of API requests applied and then left without any HTTP response.
    pub lost_rate: f64,
    /// Fraction of API requests applied and then answered with a 5xx (see
    /// `fault_after_status`): the client cannot tell whether the call took effect.
    pub fault_after_rate: f64,
    /// Which 5xx a `fault_after_rate` fault answers.
    pub fault_after_status: AfterApplyStatus,
    /// Fraction of API requests read in full and then dropped (connection closed, no answer)
    /// without being applied. The client sees exactly what it sees for `lost_rate`.
    pub drop_before_rate: f64,
    /// Which requests the four fault rates above apply to.
    pub fault_scope: FaultScope,
    /// Whether the AWS account behind the credentials may use MTurk.
    pub account: AccountMode,
    /// `None` (the default): the server's clock is real time, and `X-Amz-Date` is compared with
    /// it only when signatures are verified (`credentials` set), so hand-written requests with
    /// fixed dates work against an emulator that does not check signatures. `Some(s)`: the
    /// server's clock reads real time + `s` seconds (independent of
    /// `EmulatorHandle::advance_clock`), it answers with that `Date`, and refuses requests
    /// signed more than 15 minutes away from it (`InvalidSignatureException`, "Signature
    /// expired ...") whether or not signatures are verified. `Some(0)` checks without skew.
    pub clock_skew_secs: Option<i64>,
    /// Once bonus + fee spent reaches this, SendBonus answers "insufficient funds".
    pub spend_limit: Option<Cents>,
    /// (access key id, secret): when set, SigV4 signatures are verified.
    pub credentials: Option<(String, String)>,
    /// When set, only these assignments and their workers exist.
    pub known: Option<Vec<KnownAssignment>>,
}

/// Written by hand so that the secret key never reaches a log.
impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("balance", &self.balance)
            .field("seed", &self.seed)
            .field("latency", &self.latency)
            .field("latency_jitter", &self.latency_jitter)
            .field("throttle_rps", &self.throttle_rps)
            .field("fault_rate", &self.fault_rate)
            .field("lost_rate", &self.lost_rate)
            .field("fault_after_rate", &self.fault_after_rate)
            .field("fault_after_status", &self.fault_after_status)
            .field("drop_before_rate", &self.drop_before_rate)
            .field("fault_scope", &self.fault_scope)
            .field("account", &self.account)
            .field("clock_skew_secs", &self.clock_skew_secs)
            .field("spend_limit", &self.spend_limit)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|(id, _)| (id, "<secret>")),
            )
            .field("known", &self.known.as_ref().map(Vec::len))
            .finish()
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            balance: Cents(1_000_000),
            seed: 0,
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            throttle_rps: None,
            fault_rate: 0.0,
            lost_rate: 0.0,
            fault_after_rate: 0.0,
            fault_after_status: AfterApplyStatus::default(),
            drop_before_rate: 0.0,
            fault_scope: FaultScope::default(),
            account: AccountMode::default(),
            clock_skew_secs: None,
            spend_limit: None,
            credentials: None,
            known: None,
        }
    }
}

/// Which API requests the fault rates apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FaultScope {
    /// Every API request.
    #[default]
    All,
    /// Only requests that change something: SendBonus, AssociateQualificationWithWorker,
    /// DisassociateQualificationFromWorker, CreateWorkerBlock, DeleteWorkerBlock and
    /// CreateQualificationType. Lookups (ListBonusPayments, GetAssignment, ...) stay clean, so a
    /// test can verify through them.
    Mutating,
    /// Only the reads a preflight checks rows with: GetAssignment, ListBonusPayments and
    /// GetQualificationScore (the balance and every call that changes something stay clean).
    Checks,
}

/// The 5xx a fault after the call was applied answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AfterApplyStatus {
    /// One of the three below, picked by the seeded RNG with equal odds.
    #[default]
    Mixed,
    /// 500 `ServiceFault`, MTurk's modeled fault.
    ServiceFault,
    /// 503 from in front of MTurk (a JSON `ServiceUnavailable`; its body is a guess).
    ServiceUnavailable,
    /// 504 from a load balancer in front of MTurk (an HTML page; its body is a guess).
    GatewayTimeout,
}

/// Whether the AWS account behind the credentials may use MTurk. Checked after the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AccountMode {
    /// Linked to a requester account, and the IAM user may call MTurk.
    #[default]
    Ready,
    /// Not linked to a requester account: every valid call answers a `RequestError` pointing
    /// at https://requester.mturk.com/developer (the answer's shape is a guess).
    NotLinked,
    /// The same with the sandbox's wording (https://requestersandbox.mturk.com/developer).
    NotLinkedSandbox,
    /// The IAM user has no MTurk policy: every call answers `AccessDeniedException`.
    AccessDenied,
}

/// One assignment the emulator knows: who did it, in which HIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownAssignment {
    pub worker_id: String,
    pub assignment_id: String,
    pub hit_id: String,
}

/// Reads a CSV with the header `WorkerId,AssignmentId,HITId` (any column order, extra columns
/// ignored). Every ID must match the service model's pattern.
pub fn load_known_csv(path: &Path) -> io::Result<Vec<KnownAssignment>> {
    let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidData, msg);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    let headers = reader
        .headers()
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?
        .clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            invalid(format!(
                "{}: no {name} column (the header must be WorkerId,AssignmentId,HITId)",
                path.display()
            ))
        })
    };
    let (w, a, h) = (
        column("WorkerId")?,
        column("AssignmentId")?,
        column("HITId")?,
    );
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        // Line 1 is the header.
        let line = i + 2;
        let record = record.map_err(|e| invalid(format!("{}:{line}: {e}", path.display())))?;
        let field = |idx: usize| record.get(idx).unwrap_or("").to_owned();
        let known = KnownAssignment {
            worker_id: field(w),
            assignment_id: field(a),
            hit_id: field(h),
        };
        check_worker_id(&known.worker_id)
            .map_err(|e| invalid(format!("{}:{line}: WorkerId {e}", path.display())))?;
        check_entity_id(&known.assignment_id)
            .map_err(|e| invalid(format!("{}:{line}: AssignmentId {e}", path.display())))?;
        check_entity_id(&known.hit_id)
            .map_err(|e| invalid(format!("{}:{line}: HITId {e}", path.display())))?;
        out.push(known);
    }
    Ok(out)
}
