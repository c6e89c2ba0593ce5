//! The life of a Prolific bonus batch, in the library: read the file, check it against
//! Prolific read-only (the token, the workspace and its balance, the study and its currency,
//! every row's submission), rehearse or pass the production gate, record the batch, set up
//! every chunk (free) and confirm Prolific's own totals, pay chunk by chunk, and say how it
//! ended. The CLI parses arguments, implements [`Ui`] (lines and the confirmation prompt) and
//! maps the [`Ended`] to an exit status; it decides nothing here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::engine::{ChunkConfig, ChunkRun, ChunkRunEnd, StopSignal, execute_chunks, set_up_all};
use crate::error::{Failure, FailureKind};
use crate::ids::{ParticipantId, StudyId, SubmissionId, WorkspaceId};
use crate::input::{Payee, ProlificOptions, ProlificRow, parse_prolific};
use crate::journal::chunks::{
    ChunkRecord, NewChunkRow, batch_by_fingerprint, chunks_of, prolific_rehearsed,
};
use crate::journal::{Journal, JournalWriter, Write};
use crate::money::{Cents, Currency, ExactMinor, Money};
use crate::platform::prolific::{ProlificPlatform, SubmissionInfo, WorkspaceInfo};

/// Where a Prolific batch pays. Prolific has no sandbox: production, or a stand-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProlificTarget {
    Production,
    /// A testing endpoint (`--endpoint-url … --testing-endpoint`): not Prolific.
    Testing(String),
    /// The built-in emulator started for this run: no gate, no confirmation, no money.
    Emulator,
}

/// Everything a Prolific batch needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct ProlificSettings {
    /// The file as given (for messages and the journal).
    pub source: String,
    pub study: Option<StudyId>,
    pub workspace: Option<WorkspaceId>,
    pub target: ProlificTarget,
    pub dry_run: bool,
    pub skip_rehearsal: bool,
    pub max_bonus: Cents,
    pub max_total: Option<Cents>,
    pub options: ProlificOptions,
    pub chunks: ChunkConfig,
}

/// What the library asks of whoever runs it: lines to show, and a confirmation.
pub trait Ui: Send + Sync {
    fn say(&self, line: &str);
    /// Shows the totals and asks; `true` to pay.
    fn confirm(&self, totals: &Totals) -> bool;
    /// How the paying stands, about once a second (an empty line when it is over).
    fn progress(&self, _line: &str) {}
    /// Shows what a group batch will change and asks; `true` to change it.
    fn confirm_changes(&self, lines: &[String]) -> bool;
}

/// Prolific's own totals for every chunk set up, and the balance around them.
#[derive(Debug, Clone)]
pub struct Totals {
    pub currency: Currency,
    pub rows: u64,
    pub chunks: u64,
    pub amount: ExactMinor,
    pub fees: ExactMinor,
    pub vat: ExactMinor,
    pub total: ExactMinor,
    pub available: ExactMinor,
}

impl Totals {
    pub fn lines(&self) -> Vec<String> {
        let c = self.currency;
        let after = self
            .available
            .checked_sub(self.total)
            .unwrap_or(ExactMinor::ZERO);
        vec![
            format!(
                "Prolific's totals for {} bonus{} in {} set-up{} (nothing is paid yet):",
                self.rows,
                if self.rows == 1 { "" } else { "es" },
                self.chunks,
                if self.chunks == 1 { "" } else { "s" }
            ),
            format!("  bonuses         {}", self.amount.display(c)),
            format!("  Prolific's fees {}", self.fees.display(c)),
            format!("  VAT             {}", self.vat.display(c)),
            format!("  total           {}", self.total.display(c)),
            format!("  available       {}", self.available.display(c)),
            format!("  after           {}", after.display(c)),
        ]
    }
}

/// How a Prolific batch ended (the CLI maps it to an exit status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// A dry run: its checks passed (and the rehearsal is recorded) or found problems.
    DryRun { passed: bool },
    /// The batch ran: its rows by state.
    Ran(ChunkRunEnd),
    /// A participant-group batch ran: its changes by state.
    Groups(crate::engine::MemberRunEnd),
}

/// One row resolved against the study: the submission it pays.
#[derive(Debug, Clone)]
struct Resolved {
    row: ProlificRow,
    study: StudyId,
    submission: SubmissionId,
    participant: Option<ParticipantId>,
}

/// What a study's submissions say about each ID.
struct StudyIndex {
    by_submission: HashMap<String, SubmissionInfo>,
    by_participant: HashMap<String, Vec<String>>,
}

impl StudyIndex {
    fn new(subs: Vec<SubmissionInfo>) -> StudyIndex {
        let mut by_participant: HashMap<String, Vec<String>> = HashMap::new();
        for s in &subs {
            if let Some(p) = &s.participant_id {
                by_participant
                    .entry(p.clone())
                    .or_default()
                    .push(s.id.clone());
            }
        }
        StudyIndex {
            by_submission: subs.into_iter().map(|s| (s.id.clone(), s)).collect(),
            by_participant,
        }
    }

    /// The submission a row pays, or why it cannot be told.
    fn resolve(&self, payee: &Payee) -> Result<(String, Option<String>), String> {
        let one_of = |p: &str| -> Result<(String, Option<String>), String> {
            match self.by_participant.get(p).map(Vec::as_slice) {
                Some([s]) => Ok((s.clone(), Some(p.to_owned()))),
                Some(many) if many.len() > 1 => Err(format!(
                    "participant {p} has {} submissions in this study ({}); give the submission ID to say which is paid",
                    many.len(),
                    many.join(", ")
                )),
                _ => Err(format!("participant {p} did not take part in this study")),
            }
        };
        match payee {
            Payee::Submission(s) => match self.by_submission.get(s.as_str()) {
                Some(info) => Ok((s.to_string(), info.participant_id.clone())),
                None => Err(format!("submission {s} is not a submission of this study")),
            },
            Payee::Participant(p) => one_of(p.as_str()),
            Payee::Both(p, s) => match self.by_submission.get(s.as_str()) {
                Some(info) if info.participant_id.as_deref() == Some(p.as_str()) => {
                    Ok((s.to_string(), Some(p.to_string())))
                }
                Some(info) => Err(format!(
                    "submission {s} belongs to participant {}, not {p}",
                    info.participant_id.as_deref().unwrap_or("?")
                )),
                None => Err(format!("submission {s} is not a submission of this study")),
            },
            Payee::Either(id) => match self.by_submission.get(id) {
                Some(info) => Ok((id.clone(), info.participant_id.clone())),
                None => one_of(id),
            },
        }
    }
}

/// The content of a file as a rehearsal proves it: rows and study, not where they pay.
fn content_digest(rows: &[ProlificRow], study: Option<&StudyId>) -> String {
    let mut h = Sha256::new();
    h.update(b"payout prolific bonuses v1\n");
    if let Some(s) = study {
        h.update(s.as_str().as_bytes());
    }
    for r in rows {
        h.update(
            format!(
                "\n{:?}|{:?}|{}|{:?}",
                r.payee, r.study, r.amount.0, r.reason
            )
            .as_bytes(),
        );
    }
    hex::encode(h.finalize())
}

/// A read-only call with the engine's read retries (a fault or a lost answer on a read proves
/// nothing and costs nothing: ask again).
pub(super) async fn read<T, F, Fut>(
    cfg: &crate::engine::EngineConfig,
    stop: &StopSignal,
    ui: &dyn Ui,
    call: F,
) -> Result<T, crate::platform::PlatformError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, crate::platform::PlatformError>>,
{
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    crate::engine::read_with_retries(
        cfg,
        None,
        Some(stop),
        &mut rng,
        |e, delay| {
            ui.say(&format!(
                "Prolific: {e} — trying again in {:.1}s",
                delay.as_secs_f64()
            ))
        },
        call,
    )
    .await
}

/// The workspace a batch (or `payout doctor --prolific`) uses: the one `--workspace` names, or
/// the token's only one; several without `--workspace` are listed and refused.
pub fn choose_workspace(
    given: Option<&WorkspaceId>,
    workspaces: &[WorkspaceInfo],
) -> Result<WorkspaceId, Failure> {
    if let Some(w) = given {
        return Ok(w.clone());
    }
    match workspaces {
        [one] => one.workspace_id().ok_or_else(|| {
            failure(
                FailureKind::Account,
                format!(
                    "Prolific answered a workspace id payout cannot read: {:?}",
                    one.id
                ),
            )
        }),
        [] => Err(failure(
            FailureKind::Account,
            "the token's user has no workspace",
        )),
        many => Err(failure(
            FailureKind::Usage,
            format!(
                "the token can use {} workspaces: {}",
                many.len(),
                many.iter()
                    .map(|w| format!("{} ({})", w.id, w.title.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .with_fix("say which pays with --workspace ID")),
    }
}

pub(super) fn failure(kind: FailureKind, msg: impl Into<String>) -> Failure {
    Failure::new(kind, msg)
}

pub(super) fn platform_failure(what: &str, e: &crate::platform::PlatformError) -> Failure {
    use crate::platform::ErrorClass;
    match e.class {
        ErrorClass::Systemic(_) => failure(
            FailureKind::Credentials,
            format!("Prolific refused the token while {what}: {e}"),
        )
        .with_fix(crate::platform::prolific::TOKEN_FIX),
        ErrorClass::NotSent => failure(
            FailureKind::Unreachable,
            format!("Prolific could not be reached while {what}: {e}"),
        )
        .with_fix("check the network (or the --endpoint-url), then run the same command again"),
        _ => failure(
            FailureKind::Unreachable,
            format!("Prolific did not answer usefully while {what}: {e}"),
        )
        .with_fix("run the same command again; nothing was sent"),
    }
}

/// The batch a file already is on a ledger, found by its fingerprint (content and ledger): the
/// same command continues it. A file whose batch was cancelled is refused as a new batch: what
/// that batch did stays done, and only a file of the rest may do the rest. `did` says what
/// ("paid", "changed").
pub(super) fn same_batch(
    journal: &Journal,
    digest: &str,
    ledger: &str,
    did: &str,
) -> Result<(String, Option<(i64, String)>), Failure> {
    let fingerprint = {
        let mut h = Sha256::new();
        h.update(digest.as_bytes());
        h.update(ledger.as_bytes());
        hex::encode(h.finalize())
    };
    let existing = batch_by_fingerprint(journal.conn(), &fingerprint).map_err(Failure::from)?;
    if existing.is_none()
        && let Some(name) =
            crate::journal::chunks::closed_batch_by_fingerprint(journal.conn(), &fingerprint)
                .map_err(Failure::from)?
    {
        return Err(failure(
            FailureKind::TargetMismatch,
            format!("this file's batch {name} was cancelled; it is not run again as a new batch (what it {did} stays {did})"),
        )
        .with_fix(format!(
            "`payout report {name}` lists each row's outcome: for the rows it did not do, run a file of only those rows"
        )));
    }
    Ok((fingerprint, existing))
}

/// A dry run whose checks passed: recorded as the rehearsal of this content on this ledger.
pub(super) fn record_rehearsal(
    journal: &mut Journal,
    digest: &str,
    ledger: &str,
    source: &str,
    ui: &dyn Ui,
) -> Result<(), Failure> {
    journal
        .write(&Write::Rehearsal {
            content_digest: digest.to_owned(),
            ledger: ledger.to_owned(),
            source: source.to_owned(),
            checked: None,
        })
        .map_err(Failure::from)?;
    ui.say("Dry run: nothing was sent. The checks passed and the rehearsal is recorded: the same file may now run with --production (which still asks for confirmation).");
    Ok(())
}

/// The production gate of a Prolific batch: a passed dry run of the same content on the same
/// ledger, or `--skip-rehearsal` (the built-in emulator does nothing real: no gate). `why`
/// adds what makes a rehearsal matter for this kind of batch.
#[allow(clippy::too_many_arguments)]
pub(super) fn production_gate(
    journal: &Journal,
    emulator: bool,
    digest: &str,
    ledger: &str,
    skip_rehearsal: bool,
    source: &str,
    ui: &dyn Ui,
    why: &str,
) -> Result<(), Failure> {
    let rehearsed =
        emulator || prolific_rehearsed(journal.conn(), digest, ledger).map_err(Failure::from)?;
    match (rehearsed, skip_rehearsal) {
        (true, _) if emulator => Ok(()),
        (true, _) => {
            ui.say("Rehearsed: a dry run of this file passed its checks.");
            Ok(())
        }
        (false, true) => {
            ui.say("Not rehearsed: --skip-rehearsal (recorded with the batch).");
            Ok(())
        }
        (false, false) => Err(failure(
            FailureKind::Confirmation,
            format!("this file has not been rehearsed: Prolific has no sandbox{why}, so a production batch needs a passed dry run of the same file first"),
        )
        .with_fix(format!(
            "run `payout run {source} --platform prolific --dry-run` (read-only) with the same options, then this command again; or add --skip-rehearsal"
        ))),
    }
}

/// Runs a Prolific bonus batch from `bytes` (the file, read once).
pub async fn run(
    settings: &ProlificSettings,
    bytes: &[u8],
    platform: Arc<ProlificPlatform>,
    journal: &mut Journal,
    ui: &dyn Ui,
    stop: Arc<StopSignal>,
) -> Result<Ended, Failure> {
    let (_, rows) = parse_prolific(bytes, &settings.source, &settings.options).map_err(|e| {
        failure(
            FailureKind::InvalidInput,
            e.to_string().trim_end().to_owned(),
        )
    })?;
    // Caps, before anything is asked of Prolific.
    let over: Vec<String> = rows
        .iter()
        .filter(|r| r.amount > settings.max_bonus)
        .map(|r| format!("line {} ({})", r.line, r.amount.to_api_string()))
        .collect();
    if !over.is_empty() {
        return Err(failure(
            FailureKind::OverCap,
            format!(
                "{} bonus{} above --max-bonus {}: {}",
                over.len(),
                if over.len() == 1 { "" } else { "es" },
                settings.max_bonus.to_api_string(),
                over.iter().take(10).cloned().collect::<Vec<_>>().join(", ")
            ),
        )
        .with_fix("raise --max-bonus if these amounts are meant; nothing was sent"));
    }
    let sum: Cents = rows.iter().map(|r| r.amount).sum();
    if let Some(max) = settings.max_total
        && sum > max
    {
        return Err(failure(
            FailureKind::OverCap,
            format!(
                "the bonuses add up to {}, above --max-total {}",
                sum.to_api_string(),
                max.to_api_string()
            ),
        )
        .with_fix("raise --max-total if this total is meant; nothing was sent"));
    }
    let digest = content_digest(&rows, settings.study.as_ref());

    // The read-only preflight: always before the first set-up.
    ui.say("Checking with Prolific (read-only): the token, the workspace, the study and every row's submission.");
    let me = read(&settings.chunks.engine, &stop, ui, || platform.me())
        .await
        .map_err(|e| platform_failure("reading the token's user", &e))?;
    let workspaces = read(&settings.chunks.engine, &stop, ui, || platform.workspaces())
        .await
        .map_err(|e| platform_failure("listing the workspaces", &e))?;
    let workspace = choose_workspace(settings.workspace.as_ref(), &workspaces)?;
    let ledger = ledger_of(&settings.target, &workspace);
    let balance = read(&settings.chunks.engine, &stop, ui, || {
        platform.balance(&workspace)
    })
    .await
    .map_err(|e| platform_failure("reading the workspace's balance", &e))?;

    // Group rows by study and read each study's submissions.
    let mut by_study: BTreeMap<StudyId, Vec<&ProlificRow>> = BTreeMap::new();
    let mut problems: Vec<String> = Vec::new();
    for r in &rows {
        match r.study.as_ref().or(settings.study.as_ref()) {
            Some(s) => by_study.entry(s.clone()).or_default().push(r),
            None => problems.push(format!(
                "line {}: no study (give --study ID or a study_id column)",
                r.line
            )),
        }
    }
    if !problems.is_empty() {
        return Err(failure(FailureKind::Usage, problems.join("\n"))
            .with_fix("give the study with --study ID; nothing was sent"));
    }
    let mut currency: Option<Currency> = None;
    let mut resolved: Vec<Resolved> = Vec::new();
    let mut doubles: Vec<String> = Vec::new();
    for (study, rs) in &by_study {
        let info = read(&settings.chunks.engine, &stop, ui, || platform.study(study))
            .await
            .map_err(|e| platform_failure("reading the study", &e))?
            .ok_or_else(|| {
                failure(
                    FailureKind::Account,
                    format!(
                        "study {study} was not found (or is not in a workspace this token can use)"
                    ),
                )
                .with_fix("check the study ID in Prolific's study page URL; nothing was sent")
            })?;
        let c = info
            .currency()
            .or(balance.currency)
            .or(me.currency())
            .ok_or_else(|| {
                failure(
                    FailureKind::Account,
                    format!("study {study}: Prolific did not say its currency"),
                )
            })?;
        if currency.is_some_and(|x| x != c) {
            return Err(failure(
                FailureKind::Usage,
                "the file's studies pay in different currencies; run one file per currency",
            ));
        }
        currency = Some(c);
        ui.say(&format!(
            "Study {study} ({}): reading its submissions.",
            info.name.as_deref().unwrap_or("unnamed")
        ));
        let subs = read(&settings.chunks.engine, &stop, ui, || {
            platform.study_submissions(study)
        })
        .await
        .map_err(|e| platform_failure("listing the study's submissions", &e))?;
        let index = StudyIndex::new(subs);
        for r in rs {
            match index.resolve(&r.payee) {
                Ok((sub, participant)) => {
                    if let Some(info) = index.by_submission.get(&sub) {
                        let paid = info.bonus_payments().unwrap_or_default();
                        if paid.contains(&ExactMinor::from_whole(r.amount)) {
                            doubles.push(format!(
                                "line {}: submission {sub} already shows a bonus of {} — a probable double payment",
                                r.line,
                                Money::new(r.amount, c)
                            ));
                        }
                    }
                    resolved.push(Resolved {
                        row: (*r).clone(),
                        study: study.clone(),
                        submission: SubmissionId::parse(&sub).map_err(|e| {
                            failure(FailureKind::Account, format!("Prolific answered a submission id payout cannot read ({sub:?}: {e})"))
                        })?,
                        participant: participant.and_then(|p| ParticipantId::parse(&p).ok()),
                    });
                }
                Err(why) => problems.push(format!("line {}: {why}", r.line)),
            }
        }
    }
    let currency = currency.expect("at least one row, so one study");
    if !problems.is_empty() {
        problems.sort();
        return Err(failure(
            FailureKind::InvalidInput,
            format!(
                "{}: {} row{} cannot be paid in the study; nothing was sent\n  {}",
                settings.source,
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                problems
                    .iter()
                    .take(50)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ),
        ));
    }
    ui.say(&format!(
        "{} bonus{} for {} in {}, to {} submission{}. Prolific shows no message with a bonus: reasons stay in payout's journal and report.",
        resolved.len(),
        if resolved.len() == 1 { "" } else { "es" },
        Money::new(sum, currency),
        currency,
        resolved.len(),
        if resolved.len() == 1 { "" } else { "s" }
    ));
    // A local estimate only: Prolific's set-up answers the true fees.
    let estimate = Cents(sum.0 + sum.0.div_ceil(3));
    ui.say(&format!(
        "Estimated with a one-third service fee (an estimate; Prolific's set-up gives the real fees and VAT): {}; available: {}.",
        Money::new(estimate, currency),
        balance.available.display(currency)
    ));
    // The batch this file already is on this ledger, if any: its own payments are not doubles.
    let (fingerprint, existing) = same_batch(journal, &digest, &ledger, "paid")?;
    if existing.is_some() {
        doubles.clear();
    }
    for d in &doubles {
        ui.say(d);
    }
    // What is still to pay: all of a new batch, the pending rows of one continued.
    let to_pay = match &existing {
        Some((id, _)) => crate::journal::chunks::prolific_status(journal.conn(), *id)
            .map_err(Failure::from)?
            .map_or(sum, |st| Cents(st.pending_minor)),
        None => sum,
    };
    if crate::money::shortfall(balance.available, ExactMinor::from_whole(to_pay)).is_some() {
        return Err(failure(
            FailureKind::Account,
            format!(
                "the workspace's available balance ({}) does not cover the bonuses left to pay ({}), before fees",
                balance.available.display(currency),
                Money::new(to_pay, currency)
            ),
        )
        .with_fix("top up the workspace in Prolific (the API cannot), then run the same command again"));
    }
    let passed = doubles.is_empty();
    if settings.dry_run {
        if passed {
            record_rehearsal(journal, &digest, &ledger, &settings.source, ui)?;
        } else {
            ui.say("Dry run: nothing was sent. Not recorded as a rehearsal: the checks found the problems above.");
        }
        return Ok(Ended::DryRun { passed });
    }

    let emulator = settings.target == ProlificTarget::Emulator;
    production_gate(
        journal,
        emulator,
        &digest,
        &ledger,
        settings.skip_rehearsal,
        &settings.source,
        ui,
        "",
    )?;

    // Record the batch (or find it: the same command continues it).
    let batch = match existing {
        Some((id, name)) => {
            ui.say(&format!(
                "Continuing batch {name} (same file, same workspace)."
            ));
            id
        }
        None => {
            let new_rows: Vec<NewChunkRow> = resolved
                .iter()
                .map(|r| NewChunkRow {
                    line: r.row.line,
                    study: r.study.clone(),
                    submission: r.submission.clone(),
                    participant: r.participant.clone(),
                    amount: r.row.amount,
                    reason: r.row.reason.clone(),
                })
                .collect();
            let name = format!("prolific-{}", &digest[..6]);
            let id = journal
                .record_chunked_batch_with(
                    &name,
                    &fingerprint,
                    &ledger,
                    &settings.source,
                    currency,
                    settings.skip_rehearsal,
                    emulator,
                    &new_rows,
                )
                .map_err(Failure::from)?;
            ui.say(&format!(
                "New batch {name}: {} row{}.",
                new_rows.len(),
                if new_rows.len() == 1 { "" } else { "s" }
            ));
            id
        }
    };

    let paying = Paying {
        batch,
        workspace,
        currency,
        available: balance.available,
        emulator,
    };
    pay_batch(&paying, platform, journal, ui, stop, &settings.chunks).await
}

/// The target `--endpoint-url URL --testing-endpoint` (or `--emulator`) names, for every
/// Prolific command: a URL without `--testing-endpoint` is refused.
pub fn prolific_target(
    endpoint: Option<&str>,
    testing_endpoint: bool,
    emulator: bool,
) -> Result<ProlificTarget, Failure> {
    match (endpoint, testing_endpoint) {
        (None, _) if emulator => Ok(ProlificTarget::Emulator),
        (Some(url), true) => Ok(ProlificTarget::Testing(
            url.trim_end_matches('/').to_owned(),
        )),
        (Some(_), false) => Err(failure(
            FailureKind::Usage,
            "--endpoint-url for Prolific needs --testing-endpoint: it is a stand-in, not Prolific",
        )
        .with_fix("add --testing-endpoint if the URL is a test stand-in")),
        (None, _) => Ok(ProlificTarget::Production),
    }
}

/// Where a new Prolific batch was asked to run, as given on the command line.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub sandbox: bool,
    pub production: bool,
    pub emulator: bool,
    pub endpoint: Option<&'a str>,
    pub testing_endpoint: bool,
    pub dry_run: bool,
    pub yes: bool,
}

/// Where a new Prolific batch (bonuses or groups) runs, and the rules before anything is read:
/// no sandbox; real money or live groups need `--production` (or `--dry-run`, or the built-in
/// emulator); production without `--yes` needs someone at a terminal.
pub fn where_to_run(a: &Asked<'_>, prompt: &dyn super::Prompt) -> Result<ProlificTarget, Failure> {
    if a.sandbox {
        return Err(failure(
            FailureKind::Usage,
            "Prolific has no sandbox: every call reaches real studies and real money",
        )
        .with_fix("rehearse with --dry-run (read-only), then pay with --production"));
    }
    let target = prolific_target(a.endpoint, a.testing_endpoint, a.emulator)?;
    if !a.production && !a.dry_run && !a.emulator {
        return Err(failure(
            FailureKind::Confirmation,
            "a Prolific batch pays real money (Prolific has no sandbox): it needs --production, or --dry-run to check it read-only",
        )
        .with_fix("run with --dry-run first, then with --production"));
    }
    if a.production && !a.dry_run {
        super::need_terminal(prompt, a.yes)?;
    }
    Ok(target)
}

/// Where a batch on `ledger` pays, as recorded: its target and workspace (the inverse of the
/// ledger text [`run`] writes). `None` for a ledger that is not Prolific's.
pub fn ledger_place(ledger: &str) -> Option<(ProlificTarget, WorkspaceId)> {
    let (host, workspace) = ledger.strip_prefix("prolific@")?.rsplit_once('/')?;
    let target = match host {
        PRODUCTION_LEDGER_HOST => ProlificTarget::Production,
        EMULATOR_LEDGER_HOST => ProlificTarget::Emulator,
        url => ProlificTarget::Testing(url.to_owned()),
    };
    Some((target, WorkspaceId::parse(workspace).ok()?))
}

const PRODUCTION_LEDGER_HOST: &str = "api.prolific.com";
const EMULATOR_LEDGER_HOST: &str = "emulator";

pub(super) fn ledger_of(target: &ProlificTarget, workspace: &WorkspaceId) -> String {
    let host = match target {
        ProlificTarget::Production => PRODUCTION_LEDGER_HOST,
        ProlificTarget::Testing(url) => url,
        ProlificTarget::Emulator => EMULATOR_LEDGER_HOST,
    };
    format!("prolific@{host}/{workspace}")
}

/// Where a recorded Prolific batch works: its target, workspace and the host its calls go to.
/// Refused for a batch that is not Prolific's, and for one of a built-in emulator (gone with
/// its run).
pub fn recorded_place(
    batch: &crate::journal::BatchInfo,
) -> Result<(ProlificTarget, WorkspaceId, String), Failure> {
    let Some((target, workspace)) = ledger_place(&batch.ledger) else {
        return Err(failure(
            FailureKind::TargetMismatch,
            format!("batch {} is not a Prolific batch", batch.name),
        ));
    };
    let host = match &target {
        ProlificTarget::Testing(u) => u.clone(),
        ProlificTarget::Production => crate::platform::prolific::PRODUCTION_HOST.to_owned(),
        ProlificTarget::Emulator => {
            return Err(failure(
                FailureKind::TargetMismatch,
                format!(
                    "batch {} ran on a built-in emulator that ended with its run; nothing of it is left to reach",
                    batch.name
                ),
            )
            .with_fix("run the file again with --emulator: a new emulator, a new batch"));
        }
    };
    Ok((target, workspace, host))
}

/// Continues a recorded Prolific batch (`payout resume`): what it sent is observed first,
/// then its pending rows are set up, confirmed and paid like a run's.
pub async fn resume(
    batch: &crate::journal::BatchInfo,
    platform: Arc<ProlificPlatform>,
    journal: &mut Journal,
    ui: &dyn Ui,
    stop: Arc<StopSignal>,
    chunks: &ChunkConfig,
) -> Result<Ended, Failure> {
    let (_, workspace, _) = recorded_place(batch)?;
    let status = crate::journal::chunks::prolific_status(journal.conn(), batch.id)
        .map_err(Failure::from)?
        .ok_or_else(|| failure(FailureKind::TargetMismatch, "not a Prolific batch"))?;
    let balance = read(&chunks.engine, &stop, ui, || platform.balance(&workspace))
        .await
        .map_err(|e| platform_failure("reading the workspace's balance", &e))?;
    let paying = Paying {
        batch: batch.id,
        workspace,
        currency: status.currency,
        available: balance.available,
        emulator: false,
    };
    pay_batch(&paying, platform, journal, ui, stop, chunks).await
}

/// `payout cancel` of a Prolific batch: what was sent is read back first; if every pay sent
/// is decided (seen, or resolved by the operator), the chunks not yet paid are voided, the
/// rows not paid are closed and the batch is closed. Otherwise nothing changes and it says
/// why. Answers the batch's status after.
pub async fn cancel(
    batch: &crate::journal::BatchInfo,
    platform: Arc<ProlificPlatform>,
    journal: &mut Journal,
    stop: Arc<StopSignal>,
    cfg: &ChunkConfig,
) -> Result<crate::journal::chunks::ProlificStatus, Failure> {
    let id = batch.id;
    let cfg = cfg.clone();
    let status = journal
        .with_writer(|w: Arc<JournalWriter>| async move {
            let run = ChunkRun {
                platform,
                journal: w.clone(),
                batch: id,
                cfg,
                stop,
            };
            crate::engine::observe_sent(&run).await?;
            let s = w
                .read(move |c| crate::journal::chunks::prolific_status(c, id))
                .await?;
            if let Some(s) = &s
                && s.awaiting == 0
                && s.not_observed == 0
            {
                crate::engine::cancel_unpaid(&run).await?;
            }
            Ok(s)
        })
        .await
        .map_err(Failure::from)?
        .ok_or_else(|| failure(FailureKind::TargetMismatch, "not a Prolific batch"))?;
    if status.awaiting > 0 {
        return Err(failure(
            FailureKind::Unreachable,
            format!(
                "{} of batch {} are in chunks whose pay was sent and are not yet visible on Prolific; the batch was not cancelled (a pay sent cannot be taken back)",
                crate::output::plural(status.awaiting, "row"),
                batch.name
            ),
        )
        .with_fix("run `payout cancel` again later: once they show, or once the settle time has passed, it can decide"));
    }
    if status.not_observed > 0 {
        return Err(failure(
            FailureKind::Unreachable,
            format!(
                "{} of batch {} were not observed after their pay; the batch was not cancelled",
                crate::output::plural(status.not_observed, "row"),
                batch.name
            ),
        )
        .with_fix(format!(
            "check the study's bonuses on Prolific's dashboard, then `payout resolve {} --paid` or `--not-paid`, then cancel again",
            batch.name
        )));
    }
    journal
        .write(&Write::Close {
            batch: batch.id,
            how: crate::journal::CloseKind::Cancelled,
            by: None,
        })
        .map_err(Failure::from)?;
    crate::journal::chunks::prolific_status(journal.conn(), batch.id)
        .map_err(Failure::from)?
        .ok_or_else(|| failure(FailureKind::TargetMismatch, "not a Prolific batch"))
}

/// `payout resolve`: the operator's word on the rows of `batch` that were not observed after
/// their pay (checked on Prolific's dashboard). Answers how many rows it settled.
pub async fn resolve(
    journal: &mut Journal,
    batch: &crate::journal::BatchInfo,
    word: crate::engine::Resolution,
) -> Result<u64, Failure> {
    let id = batch.id;
    journal
        .with_writer(
            |w| async move { crate::engine::resolve_not_observed(&w, id, None, word).await },
        )
        .await
        .map_err(Failure::from)
}

/// The batch a run or a resume pays, and what it read before paying.
struct Paying {
    batch: i64,
    workspace: WorkspaceId,
    currency: Currency,
    /// The workspace's available balance before the first pay of this run.
    available: ExactMinor,
    /// The built-in emulator: no confirmation.
    emulator: bool,
}

/// The paying part of a batch, for a run and a resume alike: set up every pending chunk
/// (free), confirm Prolific's own totals, then pay and observe chunk by chunk, with a
/// progress line while it works.
async fn pay_batch(
    paying: &Paying,
    platform: Arc<ProlificPlatform>,
    journal: &mut Journal,
    ui: &dyn Ui,
    stop: Arc<StopSignal>,
    cfg: &ChunkConfig,
) -> Result<Ended, Failure> {
    let Paying {
        batch,
        ref workspace,
        currency,
        available,
        emulator,
    } = *paying;
    let stop2 = stop.clone();
    let chunks_cfg = cfg.clone();
    let platform2 = platform.clone();
    let ended = journal
        .with_writer(|w: Arc<JournalWriter>| async move {
            let mk = |cfg: ChunkConfig| ChunkRun {
                platform: platform2.clone(),
                journal: w.clone(),
                batch,
                cfg,
                stop: stop2.clone(),
            };
            // Every chunk is set up first (free): Prolific's own totals are what is confirmed.
            set_up_all(&mk(chunks_cfg.clone())).await?;
            let (chunks, rows) = w
                .read(move |c| {
                    let chunks = chunks_of(c, batch)?;
                    let mut rows = 0u64;
                    for ch in chunks
                        .iter()
                        .filter(|ch| ch.state == crate::engine::ChunkState::SetUp)
                    {
                        rows +=
                            crate::journal::chunks::rows_of_chunk(c, batch, ch.chunk)?.len() as u64;
                    }
                    Ok((chunks, rows))
                })
                .await?;
            Ok((chunks, rows))
        })
        .await
        .map_err(Failure::from)?;
    let (chunks, rows_set_up) = ended;
    let mut totals = totals_of(&chunks, currency, available);
    totals.rows = rows_set_up;
    if stop.is_stopped() {
        return Ok(Ended::Ran(ChunkRunEnd {
            stop: stop.reason(),
            ..Default::default()
        }));
    }
    if emulator && totals.chunks > 0 {
        for l in totals.lines() {
            ui.say(&l);
        }
    } else if totals.chunks > 0 && !ui.confirm(&totals) {
        return Err(failure(
            FailureKind::Confirmation,
            "not confirmed: nothing was paid (the set-ups cost nothing and are listed in the report)",
        )
        .with_fix("run the same command again and confirm, or add --yes in a script"));
    }
    let platform3 = platform.clone();
    let stop3 = stop.clone();
    let mut cfg3 = cfg.clone();
    cfg3.balance_before = Some(available);
    let end = journal
        .with_writer(|w: Arc<JournalWriter>| async move {
            let run = execute_chunks(ChunkRun {
                platform: platform3,
                journal: w.clone(),
                batch,
                cfg: cfg3,
                stop: stop3,
            });
            tokio::pin!(run);
            // The progress line, from the journal the run writes (the counts `status` gives).
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    end = &mut run => break end,
                    _ = tick.tick() => {
                        let s = w
                            .read(move |c| crate::journal::chunks::prolific_status(c, batch))
                            .await?;
                        if let Some(s) = s {
                            ui.progress(&progress_line(&s));
                        }
                    }
                }
            }
        })
        .await
        .map_err(Failure::from)?;
    ui.progress("");
    if end.not_observed > 0 {
        for line in evidence(batch, &platform, journal, workspace, currency).await? {
            ui.say(&line);
        }
    }
    Ok(Ended::Ran(end))
}

/// Rows of evidence shown at most; `payout report` lists every row.
const EVIDENCE_ROWS: u32 = 20;

/// The evidence for rows not observed, read now: each row's pay (when sent, the answer), what
/// its submission showed before and shows now, and the workspace's balance then and now.
async fn evidence(
    batch: i64,
    platform: &ProlificPlatform,
    journal: &Journal,
    workspace: &WorkspaceId,
    currency: Currency,
) -> Result<Vec<String>, Failure> {
    use crate::platform::ChunkedPlatform;
    let rows = crate::journal::chunks::not_observed_rows(journal.conn(), batch, EVIDENCE_ROWS)
        .map_err(Failure::from)?;
    let shown = |v: &[ExactMinor]| {
        if v.is_empty() {
            "no bonus".to_owned()
        } else {
            v.iter()
                .map(|x| x.display(currency))
                .collect::<Vec<_>>()
                .join(" + ")
        }
    };
    let mut lines =
        vec!["Evidence for the rows not observed (check them on Prolific's dashboard):".to_owned()];
    let now = platform.balance(workspace).await;
    let then = rows.iter().find_map(|r| r.balance_before);
    lines.push(format!(
        "  workspace balance available: {} before this run's first pay; {} now",
        then.map_or("not recorded".to_owned(), |b| b.display(currency)),
        match &now {
            Ok(b) => b.available.display(currency),
            Err(e) => format!("not read ({e})"),
        }
    ));
    for r in &rows {
        let current = match platform.submission_bonuses(&r.submission).await {
            Ok(v) => shown(&v),
            Err(e) => format!("not read ({e})"),
        };
        lines.push(format!(
            "  line {}: submission {}, {} in bulk bonus payment {} — pay sent {}, Prolific answered {}; its bonuses before: {}; now: {}",
            r.line,
            r.submission,
            Money::new(r.amount, currency),
            r.bulk_id.as_deref().unwrap_or("?"),
            crate::output::rfc3339(r.pay_sent_ms),
            r.answer.as_deref().unwrap_or("nothing"),
            r.baseline.as_deref().map_or("not recorded".to_owned(), shown),
            current
        ));
    }
    Ok(lines)
}

/// "412 of 1,000 paid, 300 accepted, not yet visible on Prolific".
pub fn progress_line(s: &crate::journal::chunks::ProlificStatus) -> String {
    let mut line = format!(
        "{} of {} paid",
        crate::output::thousands(s.paid),
        crate::output::thousands(s.rows)
    );
    if s.awaiting > 0 {
        line.push_str(&format!(
            ", {} accepted, not yet visible on Prolific",
            crate::output::thousands(s.awaiting)
        ));
    }
    if s.not_observed > 0 {
        line.push_str(&format!(
            ", {} not observed",
            crate::output::thousands(s.not_observed)
        ));
    }
    line
}

fn totals_of(chunks: &[ChunkRecord], currency: Currency, available: ExactMinor) -> Totals {
    use crate::engine::ChunkState;
    let mut t = Totals {
        currency,
        rows: 0,
        chunks: 0,
        amount: ExactMinor::ZERO,
        fees: ExactMinor::ZERO,
        vat: ExactMinor::ZERO,
        total: ExactMinor::ZERO,
        available,
    };
    let add = |a: ExactMinor, b: Option<ExactMinor>| {
        a.checked_add(b.unwrap_or(ExactMinor::ZERO)).unwrap_or(a)
    };
    for ch in chunks.iter().filter(|c| c.state == ChunkState::SetUp) {
        t.chunks += 1;
        t.amount = add(t.amount, ch.amount);
        t.fees = add(t.fees, ch.fees);
        t.vat = add(t.vat, ch.vat);
        t.total = add(t.total, ch.total);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_confirmation_shows_prolifics_numbers_and_the_balance_after_them() {
        let x = |t: &str| ExactMinor::parse(t).unwrap();
        let t = Totals {
            currency: Currency::Gbp,
            rows: 2,
            chunks: 1,
            amount: x("850"),
            fees: x("283.34"),
            vat: x("0"),
            total: x("1133.34"),
            available: x("10000"),
        };
        let lines = t.lines();
        assert!(lines[0].contains("2 bonuses in 1 set-up"), "{lines:?}");
        assert!(lines[2].ends_with("£2.8334"), "{lines:?}");
        assert!(lines[4].ends_with("£11.3334"), "{lines:?}");
        assert!(lines[6].ends_with("£88.6666"), "{lines:?}");
    }
}
