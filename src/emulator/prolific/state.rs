//! The Prolific emulator's world and its state machine, free of HTTP: the seeded state builder
//! tests use in-process, the configuration (faults, fees, paging, delays), and every change an
//! endpoint makes (set up → pay → lands later; groups with soft delete, idempotent members,
//! overwriting PATCH), with the stats tests inspect.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use super::guesses::{self, ApiError};

/// Fault rates for one class of call, each a probability drawn from the seeded RNG.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultRates {
    /// Read in full, then the connection is closed: nothing applied.
    pub drop_before: f64,
    /// Applied, then the connection is closed with no answer (a pay stays queued and lands).
    pub lost_after: f64,
    /// Applied, then answered with a 5xx (see `ProlificConfig::error_after_status`).
    pub error_after: f64,
}

impl FaultRates {
    pub fn uniform(drop_before: f64, lost_after: f64, error_after: f64) -> FaultRates {
        FaultRates {
            drop_before,
            lost_after,
            error_after,
        }
    }
}

/// The 5xx of an `error_after` fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ErrorAfterStatus {
    /// 500 or 502, picked by the seeded RNG.
    #[default]
    Mixed,
    /// 500 in Prolific's JSON error envelope.
    Internal,
    /// 502 HTML page from a proxy in front of the API.
    BadGateway,
}

/// How the emulator behaves. `Default`: no faults, no latency, pays land at once (on the next
/// look), fees ⅓ rounded up, no VAT, pages of 20.
#[derive(Debug, Clone)]
pub struct ProlificConfig {
    pub seed: u64,
    pub latency: Duration,
    pub latency_jitter: Duration,
    /// Faults of `POST /submissions/bonus-payments/`.
    pub setup_faults: FaultRates,
    /// Faults of `POST /bulk-bonus-payments/{id}/pay/`.
    pub pay_faults: FaultRates,
    /// Faults of the participant-group calls that change something.
    pub group_faults: FaultRates,
    /// Faults of every `GET`.
    pub read_faults: FaultRates,
    pub error_after_status: ErrorAfterStatus,
    /// When set, a money call (set-up or pay) holds its workspace "in progress" for its own
    /// latency plus this long; another money call of that workspace arriving meanwhile is
    /// answered 429 and not applied.
    pub contention_window: Option<Duration>,
    /// A pay answered 429 for contention was queued all the same (and lands). Off by default
    /// (`guesses::CONTENTION_QUEUES_PAY`); on, it proves a client never pays again after a 429.
    pub contended_pay_applies: bool,
    /// How long after an accepted pay its payments land.
    pub pay_delay: Duration,
    /// Fraction of accepted pays that land only after `late_pay_delay` instead.
    pub late_pay_rate: f64,
    pub late_pay_delay: Duration,
    /// Fraction of set-ups (drawn at set-up) whose id will not pay: its pay answers an error
    /// and nothing lands.
    pub unpayable_rate: f64,
    /// Every error in the `{"message", "detail"}` shape instead of the `{"error": {...}}`
    /// envelope (see `guesses::ApiError::simple_body`).
    pub simple_errors: bool,
    /// Page size of every list when the request gives none.
    pub page_size: usize,
    /// Fees as parts per million of the set-up's amount (333_333 = ⅓).
    pub fee_ppm: u64,
    /// VAT as parts per million of the fees.
    pub vat_ppm: u64,
}

impl Default for ProlificConfig {
    fn default() -> Self {
        ProlificConfig {
            seed: 0,
            latency: Duration::ZERO,
            latency_jitter: Duration::ZERO,
            setup_faults: FaultRates::default(),
            pay_faults: FaultRates::default(),
            group_faults: FaultRates::default(),
            read_faults: FaultRates::default(),
            error_after_status: ErrorAfterStatus::default(),
            contention_window: None,
            contended_pay_applies: false,
            pay_delay: Duration::ZERO,
            late_pay_rate: 0.0,
            late_pay_delay: Duration::from_secs(60),
            unpayable_rate: 0.0,
            simple_errors: false,
            page_size: 20,
            fee_ppm: 333_333,
            vat_ppm: 0,
        }
    }
}

/// A deterministic 24-hex id (Prolific's ObjectId-style ids), distinct per kind and counter.
#[derive(Debug, Clone, Default)]
struct IdGen {
    next: u64,
}

impl IdGen {
    fn make(&mut self, kind: u8) -> String {
        self.next += 1;
        format!("{:02x}{:06x}{:016x}", 0x60 + kind, 0x5eed00, self.next)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    pub id: String,
    pub title: String,
    pub currency: String,
    /// Hundredths of a minor unit (fees can be fractional).
    pub total_centi: i64,
    /// Funds assigned to active studies: in the total, not available.
    pub reserved_centi: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub id: String,
    pub title: String,
    pub workspace: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Study {
    pub id: String,
    pub name: String,
    pub project: String,
    pub workspace: String,
    pub currency: String,
    pub status: String,
    pub reward: i64,
    pub allowlist: Vec<String>,
    pub blocklist: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Submission {
    pub id: String,
    pub study: String,
    pub participant: String,
    pub status: String,
    pub started_at: String,
    pub completed_at: Option<String>,
    /// Minor units, in the order they landed.
    pub bonus_payments: Vec<i64>,
    /// How many of `bonus_payments` were seeded (`paid_before`), not landed by a pay.
    pub seeded: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub workspace: String,
    pub deleted: bool,
    /// participant id → when added (ISO 8601), in insertion order.
    pub members: Vec<(String, String)>,
}

impl Group {
    pub fn member_ids(&self) -> BTreeSet<String> {
        self.members.iter().map(|(p, _)| p.clone()).collect()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Bulk {
    pub id: String,
    pub study: String,
    pub workspace: String,
    /// (submission id, amount in minor units), one per line.
    pub rows: Vec<(String, i64)>,
    pub amount_centi: i64,
    pub fees_centi: i64,
    pub vat_centi: i64,
    pub total_centi: i64,
    pub pays: u32,
    pub will_not_pay: bool,
}

#[derive(Debug, Clone)]
struct PendingPay {
    due_ms: u64,
    bulk: String,
}

/// A bulk id paid more than once (each pay pays again, as Prolific documents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoublePayment {
    pub bulk_id: String,
    pub pays: u32,
}

/// A `PATCH` with `participant_ids` that replaced a group's membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatchOverwrite {
    pub group_id: String,
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

/// What happened, for tests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProlificStats {
    /// Requests per endpoint (`"POST /api/v1/submissions/bonus-payments/"`, path ids as `{id}`).
    pub calls: BTreeMap<String, u64>,
    pub unauthorized: u64,
    pub dropped_before_apply: u64,
    pub lost_after_apply: u64,
    pub errors_after_apply: u64,
    pub contention_429: u64,
    /// Pays answered 429 that were queued all the same (`contended_pay_applies`).
    pub contended_pays_applied: u64,
    pub setups: u64,
    pub pays_accepted: u64,
    pub pays_refused_will_not_pay: u64,
    pub pays_refused_insufficient: u64,
    /// Accepted pays whose payments have landed.
    pub pays_landed: u64,
    pub double_payments: Vec<DoublePayment>,
    pub patch_overwrites: Vec<PatchOverwrite>,
    /// Applied member adds and removes naming each `group/participant` (an idempotent change
    /// applied twice counts twice: how a test sees a change sent again).
    pub member_changes: BTreeMap<String, u64>,
}

/// Everything the emulator knows.
#[derive(Debug, Clone)]
pub struct ProlificState {
    pub(crate) tokens: BTreeSet<String>,
    pub(crate) user_id: String,
    pub(crate) workspaces: BTreeMap<String, Workspace>,
    pub(crate) workspace_order: Vec<String>,
    pub(crate) projects: BTreeMap<String, Project>,
    pub(crate) studies: BTreeMap<String, Study>,
    pub(crate) submissions: BTreeMap<String, Submission>,
    /// Study → its submission ids in creation order (lists and set-ups stay linear at 10,000+).
    by_study: BTreeMap<String, Vec<String>>,
    /// (study, participant) → their submission ids in creation order.
    by_participant: BTreeMap<(String, String), Vec<String>>,
    pub(crate) groups: BTreeMap<String, Group>,
    pub(crate) bulks: BTreeMap<String, Bulk>,
    pending: Vec<PendingPay>,
    ids: IdGen,
    pub(crate) stats: ProlificStats,
    /// Added to real time by `advance_clock`.
    offset_ms: u64,
    /// Per workspace: money calls refused with 429 until this time (ms).
    pub(crate) busy_until: BTreeMap<String, u64>,
}

/// The token `ProlificSeed::new` seeds and the CLI prints.
pub const DEFAULT_TOKEN: &str = "payout-prolific-emulator-token";

/// Builds a seeded state: workspaces, studies, participants and submissions, groups, tokens.
/// Every method returns the ids it made, so tests can write files against them.
#[derive(Debug, Clone)]
pub struct ProlificSeed {
    state: ProlificState,
}

impl Default for ProlificSeed {
    fn default() -> Self {
        Self::new()
    }
}

impl ProlificSeed {
    /// No workspaces yet; one token, `DEFAULT_TOKEN`.
    pub fn new() -> ProlificSeed {
        let mut ids = IdGen::default();
        let user_id = ids.make(0);
        ProlificSeed {
            state: ProlificState {
                tokens: BTreeSet::from([DEFAULT_TOKEN.to_owned()]),
                user_id,
                workspaces: BTreeMap::new(),
                workspace_order: Vec::new(),
                projects: BTreeMap::new(),
                studies: BTreeMap::new(),
                submissions: BTreeMap::new(),
                by_study: BTreeMap::new(),
                by_participant: BTreeMap::new(),
                groups: BTreeMap::new(),
                bulks: BTreeMap::new(),
                pending: Vec::new(),
                ids,
                stats: ProlificStats::default(),
                offset_ms: 0,
                busy_until: BTreeMap::new(),
            },
        }
    }

    /// Another accepted token.
    pub fn token(&mut self, token: &str) -> &mut Self {
        self.state.tokens.insert(token.to_owned());
        self
    }

    /// Only this token is accepted.
    pub fn only_token(&mut self, token: &str) -> &mut Self {
        self.state.tokens = BTreeSet::from([token.to_owned()]);
        self
    }

    /// A workspace with `balance_minor` (pence or cents) available, in `currency` (`GBP`).
    pub fn workspace(&mut self, title: &str, currency: &str, balance_minor: i64) -> String {
        let id = self.state.ids.make(1);
        self.state.workspaces.insert(
            id.clone(),
            Workspace {
                id: id.clone(),
                title: title.to_owned(),
                currency: currency.to_owned(),
                total_centi: balance_minor * 100,
                reserved_centi: 0,
            },
        );
        self.state.workspace_order.push(id.clone());
        id
    }

    /// Part of the workspace's total assigned to active studies (not available to spend).
    pub fn reserve(&mut self, workspace: &str, minor: i64) -> &mut Self {
        if let Some(w) = self.state.workspaces.get_mut(workspace) {
            w.reserved_centi = minor * 100;
        }
        self
    }

    /// A study in a new project of `workspace`, in the workspace's currency.
    pub fn study(&mut self, workspace: &str, name: &str) -> String {
        let id = self.state.ids.make(3);
        self.study_with_id(workspace, &id, name)
    }

    /// A study with a given id (e.g. the one a bonus file names), as `study`.
    pub fn study_with_id(&mut self, workspace: &str, id: &str, name: &str) -> String {
        let id = id.to_owned();
        let currency = self
            .state
            .workspaces
            .get(workspace)
            .map(|w| w.currency.clone())
            .unwrap_or_else(|| "GBP".to_owned());
        let project = self.state.ids.make(2);
        self.state.projects.insert(
            project.clone(),
            Project {
                id: project.clone(),
                title: format!("Project of {name}"),
                workspace: workspace.to_owned(),
            },
        );
        self.state.studies.insert(
            id.clone(),
            Study {
                id: id.clone(),
                name: name.to_owned(),
                project,
                workspace: workspace.to_owned(),
                currency,
                status: "COMPLETED".to_owned(),
                reward: 100,
                allowlist: Vec::new(),
                blocklist: Vec::new(),
            },
        );
        id
    }

    /// A new participant ID (not yet in any study).
    pub fn participant(&mut self) -> String {
        self.state.ids.make(4)
    }

    /// A submission of `participant` in `study` (a participant may have several). Returns
    /// the submission id.
    pub fn submission(&mut self, study: &str, participant: &str) -> String {
        let id = self.state.ids.make(5);
        self.submission_with_id(study, participant, &id)
    }

    /// A submission with a given id (e.g. the `SESSION_ID` a bonus file names), as
    /// `submission`; participant ids are whatever the caller passes.
    pub fn submission_with_id(&mut self, study: &str, participant: &str, id: &str) -> String {
        let id = id.to_owned();
        self.state.ids.next += 1;
        let seq = self.state.ids.next;
        let started = iso8601(1_767_225_600_000 + seq * 1000);
        self.state.submissions.insert(
            id.clone(),
            Submission {
                id: id.clone(),
                study: study.to_owned(),
                participant: participant.to_owned(),
                status: "APPROVED".to_owned(),
                started_at: started.clone(),
                completed_at: Some(started),
                bonus_payments: Vec::new(),
                seeded: 0,
            },
        );
        self.state
            .by_study
            .entry(study.to_owned())
            .or_default()
            .push(id.clone());
        self.state
            .by_participant
            .entry((study.to_owned(), participant.to_owned()))
            .or_default()
            .push(id.clone());
        id
    }

    /// `n` new participants with one submission each in `study`: (participant, submission).
    pub fn generate(&mut self, study: &str, n: usize) -> Vec<(String, String)> {
        (0..n)
            .map(|_| {
                let p = self.participant();
                let s = self.submission(study, &p);
                (p, s)
            })
            .collect()
    }

    /// Bonuses already paid on a submission (minor units), as a baseline.
    pub fn paid_before(&mut self, submission: &str, amounts: &[i64]) -> &mut Self {
        if let Some(s) = self.state.submissions.get_mut(submission) {
            s.bonus_payments.extend_from_slice(amounts);
            s.seeded = s.bonus_payments.len();
        }
        self
    }

    /// A participant group of `workspace` with these members.
    pub fn group(&mut self, workspace: &str, name: &str, members: &[String]) -> String {
        let id = self.state.ids.make(6);
        let when = iso8601(1_767_225_600_000);
        self.state.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                name: name.to_owned(),
                description: None,
                workspace: workspace.to_owned(),
                deleted: false,
                members: members.iter().map(|p| (p.clone(), when.clone())).collect(),
            },
        );
        id
    }

    /// The study allows (or, `block`, blocks) the group's members.
    pub fn study_uses_group(&mut self, study: &str, group: &str, block: bool) -> &mut Self {
        if let Some(s) = self.state.studies.get_mut(study) {
            if block {
                s.blocklist.push(group.to_owned());
            } else {
                s.allowlist.push(group.to_owned());
            }
        }
        self
    }

    pub fn build(&self) -> ProlificState {
        self.state.clone()
    }
}

pub(crate) fn real_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Milliseconds since the Unix epoch → `2026-01-01T00:00:00.000000Z`.
pub(crate) fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}000Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms % 1000
    )
}

/// Parses a decimal amount in major units with at most 2 decimals, above zero, into minor.
fn parse_major(text: &str) -> Option<i64> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if frac.len() > 2 || whole.len() > 9 {
        return None;
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let f: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().ok()? * 10,
        _ => frac.parse().ok()?,
    };
    let minor = w * 100 + f;
    (minor > 0).then_some(minor)
}

/// What a pay answered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PayOutcome {
    Accepted,
    Refused(ApiError),
}

impl ProlificState {
    pub(crate) fn now_ms(&self) -> u64 {
        real_now_ms() + self.offset_ms
    }

    pub(crate) fn advance_clock(&mut self, by: Duration) {
        self.offset_ms += by.as_millis() as u64;
    }

    pub(crate) fn count(&mut self, endpoint: &str) {
        *self.stats.calls.entry(endpoint.to_owned()).or_default() += 1;
    }

    /// Lands every accepted pay that is due: each row's amount is appended to its submission's
    /// `bonus_payments` and the workspace's balance drops by the bulk's total.
    pub(crate) fn settle(&mut self) {
        let now = self.now_ms();
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.due_ms <= now);
        self.pending = later;
        for p in due {
            let Some(bulk) = self.bulks.get(&p.bulk) else {
                continue;
            };
            let bulk = bulk.clone();
            for (submission, amount) in &bulk.rows {
                if let Some(s) = self.submissions.get_mut(submission) {
                    s.bonus_payments.push(*amount);
                }
            }
            if let Some(w) = self.workspaces.get_mut(&bulk.workspace) {
                w.total_centi -= bulk.total_centi;
            }
            self.stats.pays_landed += 1;
        }
    }

    /// How long until the next accepted pay lands (`None`: none pending).
    pub(crate) fn next_landing_in(&self) -> Option<Duration> {
        let now = self.now_ms();
        self.pending
            .iter()
            .map(|p| Duration::from_millis(p.due_ms.saturating_sub(now)))
            .min()
    }

    /// Accepted pays not landed yet.
    pub(crate) fn pending_pays(&self) -> usize {
        self.pending.len()
    }

    fn pending_total(&self, workspace: &str) -> i64 {
        self.pending
            .iter()
            .filter_map(|p| self.bulks.get(&p.bulk))
            .filter(|b| b.workspace == workspace)
            .map(|b| b.total_centi)
            .sum()
    }

    pub(crate) fn available_centi(&self, workspace: &str) -> i64 {
        self.workspaces
            .get(workspace)
            .map_or(0, |w| w.total_centi - w.reserved_centi)
    }

    /// `POST /submissions/bonus-payments/`: validates every line, creates a bulk (pays
    /// nothing). `will_not_pay` marks it as one whose pay will fail.
    pub(crate) fn set_up(
        &mut self,
        study_id: &str,
        csv: &str,
        config: &ProlificConfig,
        will_not_pay: bool,
    ) -> Result<String, ApiError> {
        let Some(study) = self.studies.get(study_id).cloned() else {
            return Err(guesses::invalid_fields(vec![(
                "study_id",
                format!("Study {study_id:?} does not exist."),
            )]));
        };
        let mut rows = Vec::new();
        let mut unknown = Vec::new();
        for (i, raw) in csv.split('\n').enumerate() {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let Some((id, amount)) = line.split_once(',') else {
                return Err(guesses::bad_bonus_line(i + 1, line));
            };
            let (id, amount) = (id.trim(), amount.trim());
            let Some(minor) = parse_major(amount) else {
                return Err(guesses::bad_bonus_line(i + 1, line));
            };
            match self.resolve_row(&study.id, id) {
                Some(submission) => rows.push((submission, minor)),
                None => unknown.push(id.to_owned()),
            }
        }
        if !unknown.is_empty() {
            return Err(guesses::unknown_bonus_ids(&unknown));
        }
        if rows.is_empty() {
            return Err(guesses::invalid_fields(vec![(
                "csv_bonuses",
                "This field may not be blank.".to_owned(),
            )]));
        }
        let amount_centi: i64 = rows.iter().map(|(_, m)| m * 100).sum();
        let fees_centi = guesses::share_rounded_up(amount_centi, config.fee_ppm);
        let vat_centi = guesses::share_rounded_up(fees_centi, config.vat_ppm);
        let id = self.ids.make(7);
        self.bulks.insert(
            id.clone(),
            Bulk {
                id: id.clone(),
                study: study.id.clone(),
                workspace: study.workspace.clone(),
                rows,
                amount_centi,
                fees_centi,
                vat_centi,
                total_centi: amount_centi + fees_centi + vat_centi,
                pays: 0,
                will_not_pay,
            },
        );
        self.stats.setups += 1;
        Ok(id)
    }

    /// A submission id of the study, or a participant id with a submission in it (their
    /// latest: see `guesses::PARTICIPANT_ROW_LANDS_ON`).
    fn resolve_row(&self, study: &str, id: &str) -> Option<String> {
        if let Some(s) = self.submissions.get(id)
            && s.study == study
        {
            return Some(s.id.clone());
        }
        self.by_participant
            .get(&(study.to_owned(), id.to_owned()))
            .and_then(|subs| subs.last())
            .cloned()
    }

    /// The study's submission ids in creation (start) order; empty for an unknown study.
    pub(crate) fn study_submissions(&self, study: &str) -> &[String] {
        self.by_study.get(study).map_or(&[], Vec::as_slice)
    }

    /// `POST /bulk-bonus-payments/{id}/pay/`: every accepted pay queues the whole bulk again.
    /// `None` when the id names no bulk.
    pub(crate) fn pay(&mut self, bulk_id: &str, delay: Duration) -> Option<PayOutcome> {
        let bulk = self.bulks.get(bulk_id)?.clone();
        if bulk.will_not_pay {
            self.stats.pays_refused_will_not_pay += 1;
            return Some(PayOutcome::Refused(guesses::will_not_pay()));
        }
        let available = self.available_centi(&bulk.workspace) - self.pending_total(&bulk.workspace);
        if available < bulk.total_centi {
            self.stats.pays_refused_insufficient += 1;
            return Some(PayOutcome::Refused(guesses::insufficient_balance()));
        }
        let pays = {
            let b = self.bulks.get_mut(bulk_id)?;
            b.pays += 1;
            b.pays
        };
        if pays > 1 {
            match self
                .stats
                .double_payments
                .iter_mut()
                .find(|d| d.bulk_id == bulk_id)
            {
                Some(d) => d.pays = pays,
                None => self.stats.double_payments.push(DoublePayment {
                    bulk_id: bulk_id.to_owned(),
                    pays,
                }),
            }
        }
        let due_ms = self.now_ms() + delay.as_millis() as u64;
        self.pending.push(PendingPay {
            due_ms,
            bulk: bulk_id.to_owned(),
        });
        self.stats.pays_accepted += 1;
        Some(PayOutcome::Accepted)
    }

    fn live_group(&mut self, id: &str) -> Result<&mut Group, ApiError> {
        match self.groups.get_mut(id) {
            Some(g) if !g.deleted => Ok(g),
            _ => Err(guesses::not_found()),
        }
    }

    pub(crate) fn create_group(
        &mut self,
        name: &str,
        workspace: &str,
        description: Option<String>,
        participants: &[String],
    ) -> Result<String, ApiError> {
        if !self.workspaces.contains_key(workspace) {
            return Err(guesses::invalid_fields(vec![(
                "workspace_id",
                format!("Workspace {workspace:?} does not exist."),
            )]));
        }
        let id = self.ids.make(6);
        let when = iso8601(self.now_ms());
        let mut members: Vec<(String, String)> = Vec::new();
        for p in participants {
            if !members.iter().any(|(m, _)| m == p) {
                members.push((p.clone(), when.clone()));
            }
        }
        self.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                name: name.to_owned(),
                description,
                workspace: workspace.to_owned(),
                deleted: false,
                members,
            },
        );
        Ok(id)
    }

    /// `PATCH`: a new name and/or description, and `participant_ids` **replaces** the
    /// membership (every such PATCH is recorded in `patch_overwrites`, with what it removed and
    /// added).
    pub(crate) fn patch_group(
        &mut self,
        id: &str,
        name: Option<String>,
        description: Option<String>,
        participants: Option<Vec<String>>,
    ) -> Result<(), ApiError> {
        let when = iso8601(self.now_ms());
        let group = self.live_group(id)?;
        if let Some(n) = name {
            group.name = n;
        }
        if let Some(d) = description {
            group.description = Some(d);
        }
        let Some(participants) = participants else {
            return Ok(());
        };
        let before = group.member_ids();
        let mut members: Vec<(String, String)> = Vec::new();
        for p in &participants {
            if members.iter().any(|(m, _)| m == p) {
                continue;
            }
            let since = group
                .members
                .iter()
                .find(|(m, _)| m == p)
                .map_or_else(|| when.clone(), |(_, t)| t.clone());
            members.push((p.clone(), since));
        }
        group.members = members;
        let after = group.member_ids();
        self.stats.patch_overwrites.push(PatchOverwrite {
            group_id: id.to_owned(),
            removed: before.difference(&after).cloned().collect(),
            added: after.difference(&before).cloned().collect(),
        });
        Ok(())
    }

    pub(crate) fn delete_group(&mut self, id: &str) -> Result<(), ApiError> {
        self.live_group(id)?.deleted = true;
        Ok(())
    }

    /// Adds members; existing members are left as they are.
    pub(crate) fn add_members(
        &mut self,
        id: &str,
        participants: &[String],
    ) -> Result<(), ApiError> {
        let when = iso8601(self.now_ms());
        let group = self.live_group(id)?;
        for p in participants {
            if !group.members.iter().any(|(m, _)| m == p) {
                group.members.push((p.clone(), when.clone()));
            }
        }
        self.count_changes(id, participants);
        Ok(())
    }

    /// Removes members; non-members are ignored.
    pub(crate) fn remove_members(
        &mut self,
        id: &str,
        participants: &[String],
    ) -> Result<(), ApiError> {
        let group = self.live_group(id)?;
        let gone: BTreeSet<&String> = participants.iter().collect();
        group.members.retain(|(m, _)| !gone.contains(m));
        self.count_changes(id, participants);
        Ok(())
    }

    fn count_changes(&mut self, id: &str, participants: &[String]) {
        for p in participants {
            *self
                .stats
                .member_changes
                .entry(format!("{id}/{p}"))
                .or_default() += 1;
        }
    }

    pub(crate) fn group_members(&self, id: &str) -> Result<&Group, ApiError> {
        match self.groups.get(id) {
            Some(g) if !g.deleted => Ok(g),
            _ => Err(guesses::not_found()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> (ProlificState, String, String, Vec<(String, String)>) {
        let mut seed = ProlificSeed::new();
        let ws = seed.workspace("Lab", "GBP", 100_000);
        let study = seed.study(&ws, "Study");
        let rows = seed.generate(&study, 3);
        (seed.build(), ws, study, rows)
    }

    #[test]
    fn set_up_pays_nothing_and_answers_prolifics_amounts() {
        let (mut st, ws, study, rows) = world();
        let csv = format!("{},4.25\n{},4.25\n", rows[0].0, rows[1].1);
        let id = st
            .set_up(&study, &csv, &ProlificConfig::default(), false)
            .unwrap();
        let bulk = &st.bulks[&id];
        assert_eq!(bulk.amount_centi, 85_000);
        // The documented example: two bonuses of 4.25 → fees 283.34.
        assert_eq!(bulk.fees_centi, 28_334);
        assert_eq!(bulk.total_centi, 113_334);
        st.settle();
        assert!(st.submissions.values().all(|s| s.bonus_payments.is_empty()));
        assert_eq!(st.workspaces[&ws].total_centi, 10_000_000);
    }

    #[test]
    fn unknown_ids_and_bad_amounts_are_refused_and_nothing_is_created() {
        let (mut st, _, study, rows) = world();
        let cfg = ProlificConfig::default();
        let e = st
            .set_up(&study, &format!("{},1\nnobody,2\n", rows[0].0), &cfg, false)
            .unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.detail.to_string().contains("nobody"));
        for bad in ["1.234", "0", "-1", "£1", "", "1,2"] {
            let e = st
                .set_up(&study, &format!("{},{bad}\n", rows[0].0), &cfg, false)
                .unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{bad:?}");
        }
        assert!(st.bulks.is_empty());
    }

    #[test]
    fn a_pay_lands_after_its_delay_and_a_second_pay_pays_again() {
        let (mut st, ws, study, rows) = world();
        let id = st
            .set_up(
                &study,
                &format!("{},1.50\n", rows[2].1),
                &ProlificConfig::default(),
                false,
            )
            .unwrap();
        assert_eq!(
            st.pay(&id, Duration::from_secs(10)),
            Some(PayOutcome::Accepted)
        );
        st.settle();
        assert!(st.submissions[&rows[2].1].bonus_payments.is_empty());
        st.advance_clock(Duration::from_secs(10));
        st.settle();
        assert_eq!(st.submissions[&rows[2].1].bonus_payments, vec![150]);
        assert_eq!(st.workspaces[&ws].total_centi, 10_000_000 - 15_000 - 5_000);
        assert!(st.stats.double_payments.is_empty());

        assert_eq!(st.pay(&id, Duration::ZERO), Some(PayOutcome::Accepted));
        st.settle();
        assert_eq!(st.submissions[&rows[2].1].bonus_payments, vec![150, 150]);
        assert_eq!(
            st.stats.double_payments,
            vec![DoublePayment {
                bulk_id: id,
                pays: 2
            }]
        );
        assert_eq!(st.pay("no-such-bulk", Duration::ZERO), None);
    }

    #[test]
    fn a_participant_row_lands_on_their_latest_submission() {
        let mut seed = ProlificSeed::new();
        let ws = seed.workspace("Lab", "USD", 100_000);
        let study = seed.study(&ws, "Study");
        let p = seed.participant();
        let first = seed.submission(&study, &p);
        let latest = seed.submission(&study, &p);
        let mut st = seed.build();
        let id = st
            .set_up(
                &study,
                &format!("{p},2\n"),
                &ProlificConfig::default(),
                false,
            )
            .unwrap();
        st.pay(&id, Duration::ZERO);
        st.settle();
        assert!(st.submissions[&first].bonus_payments.is_empty());
        assert_eq!(st.submissions[&latest].bonus_payments, vec![200]);
    }

    #[test]
    fn unpayable_and_unfunded_pays_are_refused_and_nothing_lands() {
        let mut seed = ProlificSeed::new();
        let ws = seed.workspace("Lab", "GBP", 1_000);
        let study = seed.study(&ws, "Study");
        let rows = seed.generate(&study, 1);
        let mut st = seed.build();
        let cfg = ProlificConfig::default();
        let doomed = st
            .set_up(&study, &format!("{},1\n", rows[0].1), &cfg, true)
            .unwrap();
        assert!(matches!(
            st.pay(&doomed, Duration::ZERO),
            Some(PayOutcome::Refused(_))
        ));
        // 9 + 3 fees = 12 > 10 available.
        let big = st
            .set_up(&study, &format!("{},9\n", rows[0].1), &cfg, false)
            .unwrap();
        assert!(matches!(
            st.pay(&big, Duration::ZERO),
            Some(PayOutcome::Refused(_))
        ));
        st.settle();
        assert!(st.submissions[&rows[0].1].bonus_payments.is_empty());
        assert_eq!(st.stats.pays_refused_will_not_pay, 1);
        assert_eq!(st.stats.pays_refused_insufficient, 1);
        assert_eq!(st.workspaces[&ws].total_centi, 100_000);
    }

    #[test]
    fn groups_add_and_remove_are_idempotent_patch_overwrites_delete_is_soft() {
        let mut seed = ProlificSeed::new();
        let ws = seed.workspace("Lab", "GBP", 0);
        let a = seed.participant();
        let b = seed.participant();
        let c = seed.participant();
        let g = seed.group(&ws, "Block", std::slice::from_ref(&a));
        let mut st = seed.build();
        st.add_members(&g, &[a.clone(), b.clone()]).unwrap();
        st.add_members(&g, std::slice::from_ref(&b)).unwrap();
        assert_eq!(st.groups[&g].members.len(), 2, "no member twice");
        assert_eq!(
            st.groups[&g].member_ids(),
            BTreeSet::from([a.clone(), b.clone()])
        );
        st.remove_members(&g, std::slice::from_ref(&c)).unwrap();
        st.remove_members(&g, std::slice::from_ref(&b)).unwrap();
        st.remove_members(&g, std::slice::from_ref(&b)).unwrap();
        assert_eq!(st.groups[&g].member_ids(), BTreeSet::from([a.clone()]));
        assert!(st.stats.patch_overwrites.is_empty());

        st.patch_group(&g, None, None, Some(vec![c.clone()]))
            .unwrap();
        assert_eq!(st.groups[&g].member_ids(), BTreeSet::from([c.clone()]));
        assert_eq!(
            st.stats.patch_overwrites,
            vec![PatchOverwrite {
                group_id: g.clone(),
                removed: vec![a.clone()],
                added: vec![c.clone()],
            }]
        );

        st.delete_group(&g).unwrap();
        assert!(st.groups[&g].deleted, "soft: the group is still there");
        assert!(st.add_members(&g, &[a]).is_err());
        assert!(st.delete_group(&g).is_err());
    }

    #[test]
    fn a_world_can_be_seeded_with_the_ids_a_file_names() {
        let mut seed = ProlificSeed::new();
        let ws = seed.workspace("Lab", "GBP", 10_000);
        let study = seed.study_with_id(&ws, "6000000000000000000000aa", "From a file");
        let sub = seed.submission_with_id(
            &study,
            "5f00000000000000000000bb",
            "5f00000000000000000000cc",
        );
        let mut st = seed.build();
        assert_eq!(st.study_submissions(&study), std::slice::from_ref(&sub));
        let id = st
            .set_up(
                &study,
                "5f00000000000000000000bb,1\n",
                &ProlificConfig::default(),
                false,
            )
            .unwrap();
        st.pay(&id, Duration::ZERO);
        st.settle();
        assert_eq!(st.submissions[&sub].bonus_payments, vec![100]);
    }

    #[test]
    fn iso8601_formats_a_known_instant() {
        assert_eq!(iso8601(1_767_225_600_000), "2026-01-01T00:00:00.000000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123000Z");
    }

    #[test]
    fn amounts_parse_as_major_units_with_two_decimals_at_most() {
        assert_eq!(parse_major("4.25"), Some(425));
        assert_eq!(parse_major("30"), Some(3000));
        assert_eq!(parse_major("1.5"), Some(150));
        assert_eq!(parse_major(".5"), Some(50));
        for bad in ["1.234", "0", "0.00", "-1", "1e3", "", "£1", "."] {
            assert_eq!(parse_major(bad), None, "{bad}");
        }
    }
}
