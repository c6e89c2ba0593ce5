//! The engine: executes a batch's open operations exactly once, for every kind of operation.
//!
//! A run is: verify every operation the journal holds as sent-without-an-answer (a whole group
//! at a time), then send the pending ones — concurrently, through one pace, one group at a
//! time, each attempt committed to the journal before it is sent and its outcome after it.
//! The engine decides nothing about what a platform error means (the adapter classifies) and
//! prints nothing (a [`Reporter`] renders its events).

mod chunk;
mod chunks;
mod locks;
mod members;
mod preflight;
mod quals;
mod retry;
mod run;
mod verify;

#[cfg(test)]
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

pub use crate::item::ChunkState;
pub use chunk::{ChunkAction, ChunkEvent, Resolution, SetUpCheck, chunk_next, seen_paid};
pub use chunks::{
    ChunkConfig, ChunkRun, ChunkRunEnd, cancel_unpaid, execute_chunks, observe_sent,
    resolve_not_observed, set_up_all,
};
pub use locks::{GroupGuard, GroupLocks};
pub use members::{
    CallStep, MEMBERS_PER_CALL, MemberConfig, MemberRun, MemberRunEnd, call_next, execute_members,
    verify_members,
};
pub use preflight::{Finding, not_holding, preflight};
pub use quals::{LookupError, QualMap, create_missing, look_up_qualifications};
pub use retry::{backoff, read_with_retries};
pub use run::{Next, Run, after_answer, execute, verify_open};
pub use verify::{Verdict, decide_block, decide_bonuses, decide_qualification};

use crate::money::Cents;
use crate::op::{Kind, Origin};
use crate::pace::PaceConfig;
use crate::platform::{ErrorClass, Systemic};

/// How hard to push.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Calls in flight at once.
    pub concurrency: usize,
    /// How the shared pace is set: adaptive up to a ceiling, or pinned.
    pub pace: PaceConfig,
    /// Attempts per operation for faults and lost answers (throttling has a larger allowance).
    pub max_attempts: u32,
    /// Attempts for a read-only call (verification, balance).
    pub read_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Seeds the backoff jitter, so a run's timing can be replayed.
    pub seed: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            concurrency: 8,
            pace: PaceConfig::default(),
            max_attempts: 8,
            read_attempts: 16,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(20),
            seed: 0,
        }
    }
}

/// What the engine tells its reporter.
#[derive(Debug, Clone)]
pub enum Event {
    /// Operations sent earlier without an answer are being verified, `groups` groups of them.
    Verifying {
        groups: u64,
    },
    /// An operation of this batch is done (sent now, or found applied by verification).
    Done {
        seq: u32,
        kind: Kind,
        amount: Option<Cents>,
        note: Option<String>,
    },
    Failed {
        seq: u32,
        origin: Origin,
        message: String,
    },
    /// A call failed and will be tried again after `delay`.
    Retrying {
        /// The operation's position, or `None` for a read-only call.
        seq: Option<u32>,
        class: ErrorClass,
        message: String,
        delay: Duration,
    },
    /// Left open for a later run (stopped, out of attempts, or not verifiable now).
    LeftOpen {
        seq: u32,
        message: Option<String>,
    },
    RateChanged {
        rate: f64,
        limit: Option<f64>,
    },
    Stopping {
        reason: StopReason,
    },
}

/// Renders events (a progress bar, a log, a test's recorder).
pub trait Reporter: Send + Sync {
    fn event(&self, e: &Event);
}

/// A reporter that ignores everything.
pub struct Silent;
impl Reporter for Silent {
    fn event(&self, _: &Event) {}
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C or SIGTERM: finish the calls under way, start no more.
    User,
    /// Every further call would fail the same way.
    Systemic(Systemic, String),
    /// The journal cannot record what happens: nothing more may be sent.
    Journal(String),
}

/// Tells the engine to stop dispatching. Shared by signal handlers and the engine's tasks.
#[derive(Default)]
pub struct StopSignal {
    flag: AtomicBool,
    reason: Mutex<Option<StopReason>>,
    notify: Notify,
}

impl StopSignal {
    /// The first reason given is kept.
    pub fn stop(&self, reason: StopReason) {
        {
            let mut r = self.reason.lock().expect("stop reason lock");
            if r.is_none() {
                *r = Some(reason);
            }
        }
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.reason.lock().expect("stop reason lock").clone()
    }

    /// Resolves once `stop` has been called.
    pub async fn stopped(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}

/// How a run ended; the per-operation truth is in the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    pub stop: Option<StopReason>,
    /// The pace at the end, requests per second.
    pub pace: f64,
    /// The platform's limit as the pacer measured it, if it throttled.
    pub limit: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stop_signal_wakes_waiters_and_keeps_the_first_reason() {
        let s = Arc::new(StopSignal::default());
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.stopped().await })
        };
        s.stop(StopReason::User);
        s.stop(StopReason::Systemic(Systemic::Credentials, "x".into()));
        waiter.await.unwrap();
        assert_eq!(s.reason(), Some(StopReason::User));
    }
}

#[cfg(test)]
mod scripted;
