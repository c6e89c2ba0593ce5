//! Everything the emulated account remembers (balance, ledger, tokens, qualifications, blocks)
//! and what the emulator counts about its traffic (stats, sliding one-second windows).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::config::EmulatorConfig;
use super::ledger::Ledger;
use crate::money::Cents;

/// How long MTurk remembers a `UniqueRequestToken`.
pub(crate) const TOKEN_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// Far enough for any test (about 1,000 years), small enough that clock arithmetic never
/// overflows.
const MAX_CLOCK_OFFSET: Duration = Duration::from_secs(1_000 * 365 * 24 * 3600);

/// A bonus the emulator actually paid.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Payment {
    pub worker_id: String,
    pub assignment_id: String,
    pub hit_id: String,
    pub amount: Cents,
    pub fee: Cents,
    pub reason: String,
    pub token: Option<String>,
    /// Emulator clock (real time + offset), ms since the Unix epoch.
    pub time_ms: u64,
}

/// What the emulator has seen.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// Per operation (`UnknownOperation` for anything else), every API request received.
    pub calls: BTreeMap<String, u64>,
    pub payments: u64,
    pub throttled: u64,
    /// Answered 500 ServiceFault without being applied (`fault_rate`).
    pub faulted: u64,
    /// Applied, then the connection dropped without an answer (`lost_rate`).
    pub lost: u64,
    /// Applied, then answered with a 5xx (`fault_after_rate`).
    pub faulted_after_apply: u64,
    /// Read, then the connection dropped without applying anything (`drop_before_rate`).
    pub dropped_before_apply: u64,
    /// Notification e-mails MTurk would have sent: one per applied
    /// AssociateQualificationWithWorker whose SendNotification is true (the default).
    pub notifications: u64,
    /// Requests refused for a missing or malformed `Authorization`.
    pub unsigned: u64,
    /// Requests refused for a wrong signature, unknown key, bad scope, session token, or (with
    /// signatures verified or a clock skew set) a request time outside the signature window.
    pub bad_signatures: u64,
    /// Highest count of API requests in any sliding one-second window.
    pub max_requests_in_1s: u64,
    pub total_requests: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum QualificationStatus {
    Granted,
    Revoked,
}

impl QualificationStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            QualificationStatus::Granted => "Granted",
            QualificationStatus::Revoked => "Revoked",
        }
    }
}

/// A worker's qualification as the emulator holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QualificationGrant {
    pub qualification_type_id: String,
    pub worker_id: String,
    pub integer_value: i32,
    pub status: QualificationStatus,
    /// Whether the last grant asked MTurk to email the worker (`SendNotification`, default true).
    pub send_notification: bool,
    pub grant_time_ms: u64,
    pub revoke_reason: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct QualType {
    pub id: String,
    pub name: String,
    pub description: String,
    pub keywords: Option<String>,
    pub status: String,
    pub requestable: bool,
    pub owned: bool,
    pub auto_granted: bool,
    pub auto_granted_value: Option<i32>,
    pub retry_delay: Option<i64>,
    pub test: Option<String>,
    pub answer_key: Option<String>,
    pub test_duration: Option<i64>,
    pub created_ms: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct AssignmentRec {
    pub worker_id: String,
    pub hit_id: String,
    pub seen_ms: u64,
}

/// Tokens already used, with the emulator time they were first used.
#[derive(Debug, Default)]
pub(crate) struct TokenWindow {
    used: HashMap<String, u64>,
}

impl TokenWindow {
    /// True if `token` was used less than 24 h before `now_ms`.
    pub fn is_repeat(&self, token: &str, now_ms: u64) -> bool {
        self.used
            .get(token)
            .is_some_and(|&t| now_ms < t.saturating_add(TOKEN_WINDOW_MS))
    }

    /// Records a use; after expiry a new use restarts the window.
    pub fn record(&mut self, token: String, now_ms: u64) {
        self.used.insert(token, now_ms);
    }
}

/// Arrival times (ns on a monotonic clock) in the last second.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    times: VecDeque<u64>,
}

const SECOND_NS: u64 = 1_000_000_000;

impl RateWindow {
    fn expire(&mut self, now_ns: u64) {
        while let Some(&front) = self.times.front() {
            if front + SECOND_NS <= now_ns {
                self.times.pop_front();
            } else {
                break;
            }
        }
    }

    /// How many arrivals lie in `(now - 1 s, now]`.
    pub fn count(&mut self, now_ns: u64) -> usize {
        self.expire(now_ns);
        self.times.len()
    }

    /// Adds an arrival and returns the count in the window ending at it.
    pub fn push(&mut self, now_ns: u64) -> usize {
        self.expire(now_ns);
        self.times.push_back(now_ns);
        self.times.len()
    }
}

pub(crate) struct State {
    /// Live fault knobs (latency, throttle, fault/lost rates, spend limit). The credentials and
    /// known assignments are fixed at start; changing them here has no effect.
    pub config: EmulatorConfig,
    pub balance: Cents,
    pub spent: Cents,
    pub clock_offset: Duration,
    pub rng: fastrand::Rng,
    pub ledger: Ledger,
    pub tokens: TokenWindow,
    pub known_mode: bool,
    pub assignments: HashMap<String, AssignmentRec>,
    pub known_workers: HashSet<String>,
    /// In known mode, the HITs of the known assignments.
    pub known_hits: HashSet<String>,
    pub qual_types: Vec<QualType>,
    pub quals: BTreeMap<(String, String), QualificationGrant>,
    pub blocks: BTreeMap<String, String>,
    /// Notification e-mails per (worker, qualification type).
    pub notifications: BTreeMap<(String, String), u64>,
    pub stats: Stats,
    all_requests: RateWindow,
    admitted: RateWindow,
}

impl State {
    pub fn new(config: EmulatorConfig) -> State {
        let now = real_now_ms();
        let mut assignments = HashMap::new();
        let mut known_workers = HashSet::new();
        let mut known_hits = HashSet::new();
        if let Some(known) = &config.known {
            for k in known {
                known_workers.insert(k.worker_id.clone());
                known_hits.insert(k.hit_id.clone());
                assignments.insert(
                    k.assignment_id.clone(),
                    AssignmentRec {
                        worker_id: k.worker_id.clone(),
                        hit_id: k.hit_id.clone(),
                        seen_ms: now,
                    },
                );
            }
        }
        State {
            balance: config.balance,
            spent: Cents::ZERO,
            clock_offset: Duration::ZERO,
            rng: fastrand::Rng::with_seed(config.seed),
            ledger: Ledger::default(),
            tokens: TokenWindow::default(),
            known_mode: config.known.is_some(),
            assignments,
            known_workers,
            known_hits,
            qual_types: system_qualification_types(),
            quals: BTreeMap::new(),
            blocks: BTreeMap::new(),
            notifications: BTreeMap::new(),
            stats: Stats::default(),
            all_requests: RateWindow::default(),
            admitted: RateWindow::default(),
            config,
        }
    }

    /// The emulator clock: real time plus whatever tests advanced it by.
    pub fn now_ms(&self) -> u64 {
        real_now_ms().saturating_add(self.clock_offset.as_millis() as u64)
    }

    /// Moves the emulator clock forward; saturates instead of overflowing on absurd amounts
    /// (the HTTP endpoint takes any number a client sends).
    pub fn advance_clock(&mut self, by: Duration) {
        self.clock_offset = self.clock_offset.saturating_add(by).min(MAX_CLOCK_OFFSET);
    }

    /// Counts an API request arriving at `now_ns` (monotonic).
    pub fn count_request(&mut self, op: &str, now_ns: u64) {
        self.stats.total_requests += 1;
        match self.stats.calls.get_mut(op) {
            Some(n) => *n += 1,
            None => {
                self.stats.calls.insert(op.to_owned(), 1);
            }
        }
        let in_window = self.all_requests.push(now_ns) as u64;
        self.stats.max_requests_in_1s = self.stats.max_requests_in_1s.max(in_window);
    }

    /// Admits a request under the throttle, or says it must be throttled.
    pub fn admit(&mut self, now_ns: u64) -> bool {
        match self.config.throttle_rps {
            Some(limit) if self.admitted.count(now_ns) >= limit as usize => false,
            _ => {
                self.admitted.push(now_ns);
                true
            }
        }
    }

    /// Draws `true` with probability `rate`; draws nothing when the rate is zero, so that
    /// turning one fault on does not reshuffle the others.
    pub fn roll(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.f64() < rate
    }

    pub fn qual_type(&self, id: &str) -> Option<&QualType> {
        self.qual_types.iter().find(|t| t.id == id)
    }
}

pub(crate) fn real_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A few types owned by MTurk rather than the caller, so that `MustBeOwnedByCaller` matters.
fn system_qualification_types() -> Vec<QualType> {
    let system = |id: &str, name: &str, description: &str| QualType {
        id: id.to_owned(),
        name: name.to_owned(),
        description: description.to_owned(),
        keywords: None,
        status: "Active".to_owned(),
        requestable: false,
        owned: false,
        auto_granted: false,
        auto_granted_value: None,
        retry_delay: None,
        test: None,
        answer_key: None,
        test_duration: None,
        created_ms: 1_136_073_600_000,
    };
    vec![
        system(
            "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6",
            "Masters",
            "Workers who have demonstrated excellence across a wide range of HITs.",
        ),
        system(
            "000000000000000000L0",
            "Worker_PercentAssignmentsApproved",
            "The percentage of assignments the Worker has submitted that were approved.",
        ),
        system(
            "00000000000000000071",
            "Worker_Locale",
            "The location of the Worker, as specified in the Worker's mailing address.",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_repeats_inside_24h_but_not_after() {
        let mut w = TokenWindow::default();
        assert!(!w.is_repeat("t", 1_000));
        w.record("t".into(), 1_000);
        assert!(w.is_repeat("t", 1_000));
        assert!(w.is_repeat("t", 1_000 + TOKEN_WINDOW_MS - 1));
        assert!(!w.is_repeat("t", 1_000 + TOKEN_WINDOW_MS));
        assert!(!w.is_repeat("other", 1_000));
        // A use after expiry starts a new window.
        w.record("t".into(), 1_000 + TOKEN_WINDOW_MS);
        assert!(w.is_repeat("t", 1_000 + TOKEN_WINDOW_MS + 5));
    }

    #[test]
    fn rate_window_counts_the_last_second_only() {
        let mut w = RateWindow::default();
        assert_eq!(w.push(0), 1);
        assert_eq!(w.push(500_000_000), 2);
        assert_eq!(w.push(999_999_999), 3);
        // The arrival at 0 leaves the window exactly one second later.
        assert_eq!(w.push(SECOND_NS), 3);
        assert_eq!(w.count(1_500_000_000), 2);
        assert_eq!(w.count(3 * SECOND_NS), 0);
    }

    #[test]
    fn throttle_admits_at_most_the_limit_per_second() {
        let mut s = State::new(EmulatorConfig {
            throttle_rps: Some(2),
            ..EmulatorConfig::default()
        });
        assert!(s.admit(0));
        assert!(s.admit(1));
        assert!(!s.admit(2));
        assert!(!s.admit(SECOND_NS - 1));
        // Throttled requests do not use up capacity: one second after the first, one slot frees.
        assert!(s.admit(SECOND_NS));
        assert!(!s.admit(SECOND_NS));
        assert!(s.admit(SECOND_NS + 1));
    }

    #[test]
    fn max_requests_in_one_second_is_the_sliding_maximum() {
        let mut s = State::new(EmulatorConfig::default());
        for t in [0, 100, 200, 1_000_000_150, 1_000_000_160, 5 * SECOND_NS] {
            s.count_request("SendBonus", t);
        }
        // Both the first burst and the window ending at 1.00000016 s (which still holds the
        // arrival at 200 ns) hold three; no window holds four.
        assert_eq!(s.stats.max_requests_in_1s, 3);
        assert_eq!(s.stats.total_requests, 6);
        assert_eq!(s.stats.calls["SendBonus"], 6);
    }
}
