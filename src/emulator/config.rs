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
            spend_limit: None,
            credentials: None,
            known: None,
        }
    }
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
