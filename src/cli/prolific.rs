//! `payout run FILE --platform prolific` and `payout resolve`: arguments resolved into
//! [`ProlificSettings`], the token found, the batch's life handed to `batch::prolific`, and its
//! end rendered and mapped to an exit status. No policy here.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::args::JournalArgs;
use super::{Ctx, Outcome};
use crate::batch::prolific::{Ended, ProlificSettings, ProlificTarget, Totals, Ui, run};
use crate::engine::{ChunkConfig, EngineConfig, Resolution, StopReason, StopSignal};
use crate::error::{Exit, Failure, FailureKind};
use crate::ids::{StudyId, WorkspaceId};
use crate::input::ProlificOptions;
use crate::journal::Journal;
use crate::money::Cents;
use crate::platform::aws_files::display_path;
use crate::platform::prolific::{
    HttpTimeouts, PRODUCTION_HOST, ProlificPlatform, TOKEN_FIX, Token,
};
use crate::signals::{Signals, first_signal};

/// Reads `15s`, `10m`, `1h`, `90` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit())
        .map_or((t, ""), |i| t.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 15s, 10m or 1h"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" | "min" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("{s:?} is not a duration such as 15s, 10m or 1h")),
    };
    Ok(Duration::from_secs(secs))
}

/// Where `payout setup --prolific` stores the token and [`find_token`] reads it:
/// `prolific-token` in payout's config directory (`$XDG_CONFIG_HOME/payout`, else
/// `~/.config/payout`).
pub fn token_path() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("payout")
        .join("prolific-token")
}

/// Where a token was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `PROLIFIC_TOKEN`.
    Env,
    /// The file [`token_path`] names.
    File(PathBuf),
}

/// The Prolific token: `PROLIFIC_TOKEN` (what Prolific's own CLI reads), or the file
/// `payout setup --prolific` writes (0600, in payout's config directory).
pub fn find_token() -> Result<Token, Failure> {
    find_token_from().map(|(t, _)| t)
}

/// [`find_token`], and where the token came from.
pub fn find_token_from() -> Result<(Token, TokenSource), Failure> {
    let missing = |why: &str| {
        Failure::new(
            FailureKind::Credentials,
            format!("no Prolific API token: {why}"),
        )
        .with_fix(format!(
            "{TOKEN_FIX} (or store it with `payout setup --prolific`)"
        ))
    };
    if let Ok(t) = std::env::var("PROLIFIC_TOKEN") {
        return Token::new(&t)
            .map(|t| (t, TokenSource::Env))
            .ok_or_else(|| missing("PROLIFIC_TOKEN is set but empty or not a token"));
    }
    let path = token_path();
    match std::fs::read_to_string(&path) {
        Ok(t) => Token::new(&t)
            .map(|t| (t, TokenSource::File(path.clone())))
            .ok_or_else(|| {
                missing(&format!(
                    "{} holds no token (empty, or more than one word)",
                    display_path(&path)
                ))
            }),
        Err(_) => Err(missing("PROLIFIC_TOKEN is not set and none is stored")),
    }
}

pub use crate::batch::prolific::prolific_target;

/// The client for a host, with `timeouts`.
pub fn platform_for(
    host: &str,
    token: Token,
    timeouts: HttpTimeouts,
) -> Result<ProlificPlatform, Failure> {
    ProlificPlatform::new(host, token, timeouts)
        .map_err(|e| usage(e.to_string(), "give a URL such as http://127.0.0.1:8080"))
}

/// The Prolific part of `payout run`, resolved by `run.rs` from its own arguments.
pub struct ProlificRun<'a> {
    pub file: &'a Path,
    pub journal: &'a JournalArgs,
    pub study: Option<String>,
    pub workspace: Option<String>,
    pub production: bool,
    pub sandbox: bool,
    pub emulator: bool,
    pub endpoint: Option<String>,
    pub testing_endpoint: bool,
    pub dry_run: bool,
    pub yes: bool,
    pub skip_rehearsal: bool,
    pub max_bonus: Cents,
    pub max_total: Option<Cents>,
    pub amount_column: Option<String>,
    pub chunk_size: usize,
    pub settle: Duration,
    pub backoff: Duration,
    /// Participant groups: `--group`, `--block-list`, `--add`/`--remove`, `--create-missing`.
    pub group: Option<String>,
    pub block_list: Option<String>,
    pub action: Option<crate::item::MemberAction>,
    pub create_missing: bool,
}

pub(super) struct CliUi<'a> {
    ctx: &'a Ctx,
    yes: bool,
    progress: std::sync::Mutex<ProgressShown>,
}

/// The progress line as last shown: a bar at a terminal, a plain line every ten seconds in a
/// log, nothing with --quiet.
#[derive(Default)]
struct ProgressShown {
    bar: Option<indicatif::ProgressBar>,
    logged: Option<(std::time::Instant, String)>,
}

impl<'a> CliUi<'a> {
    pub(super) fn new(ctx: &'a Ctx, yes: bool) -> CliUi<'a> {
        CliUi {
            ctx,
            yes,
            progress: Default::default(),
        }
    }
}

impl Ui for CliUi<'_> {
    fn say(&self, line: &str) {
        let shown = self.progress.lock().expect("progress lock");
        match &shown.bar {
            Some(bar) => bar.suspend(|| self.ctx.printer.say(line)),
            None => self.ctx.printer.say(line),
        }
    }

    fn progress(&self, line: &str) {
        let printer = self.ctx.printer;
        if printer.quiet {
            return;
        }
        let mut shown = self.progress.lock().expect("progress lock");
        if line.is_empty() {
            if let Some(bar) = shown.bar.take() {
                bar.finish_and_clear();
            }
            return;
        }
        if printer.bar {
            let bar = shown.bar.get_or_insert_with(|| {
                let bar = indicatif::ProgressBar::with_draw_target(
                    None,
                    indicatif::ProgressDrawTarget::stderr(),
                );
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            });
            bar.set_message(line.to_owned());
            return;
        }
        let due = match &shown.logged {
            None => true,
            Some((at, last)) => at.elapsed() >= Duration::from_secs(10) && last != line,
        };
        if due {
            printer.say(line);
            shown.logged = Some((std::time::Instant::now(), line.to_owned()));
        }
    }

    fn confirm(&self, totals: &Totals) -> bool {
        self.ask(&totals.lines(), "Type yes to pay: ")
    }

    fn confirm_changes(&self, lines: &[String]) -> bool {
        self.ask(lines, "Type yes to change these groups: ")
    }
}

impl CliUi<'_> {
    /// The production banner and `lines`, then a typed yes (or `--yes`).
    fn ask(&self, lines: &[String], prompt: &str) -> bool {
        let mut banner = String::from("\n  *** PRODUCTION: real money, real participants ***\n");
        for l in lines {
            banner.push_str("  ");
            banner.push_str(l);
            banner.push('\n');
        }
        self.ctx.printer.warn(banner.trim_end());
        if self.yes {
            self.ctx.printer.warn("Confirmed by --yes.");
            return true;
        }
        use crate::batch::Prompt as _;
        if !super::Terminal.can_answer() {
            self.ctx
                .printer
                .warn("No terminal to confirm at, and no --yes.");
            return false;
        }
        super::Terminal
            .ask(prompt)
            .is_some_and(|a| a.trim().eq_ignore_ascii_case("yes"))
    }
}

fn usage(msg: impl Into<String>, fix: impl Into<String>) -> Failure {
    Failure::new(FailureKind::Usage, msg).with_fix(fix)
}

pub async fn run_prolific(r: ProlificRun<'_>, ctx: &Ctx) -> Outcome {
    let target = crate::batch::prolific::where_to_run(
        &crate::batch::prolific::Asked {
            sandbox: r.sandbox,
            production: r.production,
            emulator: r.emulator,
            endpoint: r.endpoint.as_deref(),
            testing_endpoint: r.testing_endpoint,
            dry_run: r.dry_run,
            yes: r.yes,
        },
        &super::Terminal,
    )?;
    let parse_id = |what: &str, s: &Option<String>| -> Result<Option<String>, Failure> {
        match s {
            None => Ok(None),
            Some(t) => crate::ids::check_prolific_id(t.trim())
                .map(|_| Some(t.trim().to_owned()))
                .map_err(|e| {
                    usage(
                        format!("--{what} {t:?} {e}"),
                        format!("copy the {what} ID from Prolific"),
                    )
                }),
        }
    };
    let study = parse_id("study", &r.study)?.map(|s| StudyId::parse(&s).expect("checked"));
    let workspace =
        parse_id("workspace", &r.workspace)?.map(|s| WorkspaceId::parse(&s).expect("checked"));
    // The file is read once, whole: a pipe is never read twice.
    let bytes = std::fs::read(r.file).map_err(|e| {
        Failure::new(
            FailureKind::InvalidInput,
            format!("{}: cannot be read: {e}", r.file.display()),
        )
    })?;
    if r.group.is_some()
        || r.block_list.is_some()
        || r.action.is_some()
        || std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| t.lines().next())
            .is_some_and(crate::input::first_line_is_group_file)
    {
        return super::groups::run_groups(&r, &bytes, target, workspace, ctx).await;
    }
    let options = ProlificOptions {
        amount_column: r.amount_column.clone(),
    };
    // The built-in emulator: a study in which every ID the file names took part.
    let mut study = study;
    let emulator = match target {
        ProlificTarget::Emulator => {
            let (emu, default_study) = start_emulator_for(
                &bytes,
                &r.file.display().to_string(),
                &options,
                study.as_ref(),
            )
            .await?;
            // Rows that name no study are paid in the emulated one.
            study = study.or(default_study);
            Some(emu)
        }
        _ => None,
    };
    let (platform, banner) = connect(&target, emulator.as_ref().map(|e| e.url()))?;
    ctx.printer.say(format!(
        "payout · {banner} · {} · token {}",
        r.file.display(),
        platform.token_hint()
    ));
    let settings = ProlificSettings {
        source: r.file.display().to_string(),
        study,
        workspace,
        target,
        dry_run: r.dry_run,
        skip_rehearsal: r.skip_rehearsal,
        max_bonus: r.max_bonus,
        max_total: r.max_total,
        options,
        chunks: ChunkConfig {
            chunk_size: r.chunk_size.max(1),
            settle: r.settle,
            engine: EngineConfig {
                backoff_base: r.backoff,
                ..EngineConfig::default()
            },
            ..ChunkConfig::default()
        },
    };
    let mut journal = Journal::open(&r.journal.path())?;
    for w in journal.take_warnings() {
        ctx.printer.warn(format!("warning: {w}"));
    }
    let stop = Arc::new(StopSignal::default());
    let signals = Signals::install();
    let ui = CliUi::new(ctx, r.yes);
    let work = run(
        &settings,
        &bytes,
        Arc::new(platform),
        &mut journal,
        &ui,
        stop.clone(),
    );
    let ended = drive(work, signals, &stop, ctx).await;
    if let Some(e) = emulator {
        e.shutdown().await;
    }
    render_end(ended?, ctx)
}

/// The client for a new batch's target (the built-in emulator's own token and URL, or the
/// token payout finds) and the banner naming where it works.
pub(super) fn connect(
    target: &ProlificTarget,
    emulator_url: Option<String>,
) -> Result<(ProlificPlatform, String), Failure> {
    let (token, host) = match (target, emulator_url) {
        (ProlificTarget::Emulator, Some(url)) => (
            Token::new(crate::emulator::prolific::DEFAULT_TOKEN).expect("a token"),
            url,
        ),
        (ProlificTarget::Testing(u), _) => (find_token()?, u.clone()),
        _ => (find_token()?, PRODUCTION_HOST.to_owned()),
    };
    let platform = platform_for(&host, token, HttpTimeouts::default())?;
    let banner = match target {
        ProlificTarget::Production => "PROLIFIC (production)".to_owned(),
        ProlificTarget::Testing(u) => format!("PROLIFIC testing endpoint {u}, not Prolific"),
        ProlificTarget::Emulator => "PROLIFIC EMULATOR (built in, no money)".to_owned(),
    };
    Ok((platform, banner))
}

/// Runs a batch's work until it ends or Ctrl-C is pressed twice: the first press stops new
/// set-ups and pays, the second quits at once (`None`).
pub(super) async fn drive(
    work: impl std::future::Future<Output = Result<Ended, Failure>>,
    mut signals: Option<Signals>,
    stop: &StopSignal,
    ctx: &Ctx,
) -> Result<Option<Ended>, Failure> {
    tokio::pin!(work);
    let mut presses = 0;
    loop {
        tokio::select! {
            e = &mut work => return e.map(Some),
            _ = first_signal(&mut signals) => {
                presses += 1;
                if presses > 1 {
                    // A second Ctrl-C quits at once: "pay sent" is already committed for any
                    // pay under way, so the next run observes it and never pays it again.
                    ctx.printer.warn("Quitting now. Run the same command again: it reads back what was sent before doing anything else.");
                    return Ok(None);
                }
                ctx.printer.warn("Stopping: no new set-up or pay is sent; what was sent is kept in the journal. Run the same command again to go on (Ctrl-C again quits at once).");
                stop.stop(StopReason::User);
            }
        }
    }
}

/// How a Prolific batch's run or resume ended, shown and mapped to an exit status.
pub(super) fn render_end(ended: Option<Ended>, ctx: &Ctx) -> Outcome {
    let Some(ended) = ended else {
        return Ok(Exit::Incomplete);
    };
    match ended {
        Ended::DryRun { passed } => {
            ctx.put("preflight", serde_json::json!({ "passed": passed }));
            Ok(Exit::Ok)
        }
        Ended::Groups(end) => super::groups::render_groups_end(&end, ctx),
        Ended::Ran(end) => {
            ctx.put(
                "summary",
                serde_json::json!({
                    "paid": end.paid, "awaiting": end.awaiting, "not_observed": end.not_observed,
                    "pending": end.pending, "failed": end.failed,
                }),
            );
            ctx.printer.say(format!(
                "{} paid, {} accepted but not yet visible on Prolific, {} not observed, {} pending, {} failed.",
                end.paid, end.awaiting, end.not_observed, end.pending, end.failed
            ));
            if end.not_observed > 0 {
                ctx.printer.warn(format!(
                    "{} row{} were not seen paid within the settle time. Check the study's bonuses on Prolific's dashboard, then `payout resolve BATCH --not-paid` (to pay them again) or `--paid`.",
                    end.not_observed,
                    if end.not_observed == 1 { "" } else { "s" }
                ));
            }
            if let Some(StopReason::Systemic(_, m) | StopReason::Journal(m)) = &end.stop {
                ctx.printer.warn(format!("Stopped: {m}"));
            }
            Ok(
                if end.pending + end.awaiting + end.not_observed > 0 || end.stop.is_some() {
                    Exit::Incomplete
                } else if end.failed > 0 {
                    Exit::SomeFailed
                } else {
                    Exit::Ok
                },
            )
        }
    }
}

/// The client for a recorded Prolific batch, where it was recorded.
pub(super) fn platform_of_batch(
    batch: &crate::journal::BatchInfo,
) -> Result<(ProlificTarget, ProlificPlatform), Failure> {
    let (target, _, host) = crate::batch::prolific::recorded_place(batch)?;
    let platform = platform_for(&host, find_token()?, HttpTimeouts::default())?;
    Ok((target, platform))
}

/// `payout cancel` of a Prolific batch.
pub async fn cancel_prolific(
    batch: &crate::journal::BatchInfo,
    mut journal: Journal,
    ctx: &Ctx,
) -> Outcome {
    let (_, platform) = platform_of_batch(batch)?;
    let st = crate::batch::prolific::cancel(
        batch,
        Arc::new(platform),
        &mut journal,
        Arc::new(StopSignal::default()),
        &ChunkConfig::default(),
    )
    .await?;
    ctx.printer.say(format!(
        "Batch {} cancelled: {} paid; {} not paid are closed and will not be paid{}.",
        batch.name,
        st.paid,
        st.cancelled,
        if st.unpaid_set_ups.is_empty() {
            String::new()
        } else {
            format!(
                " (set-ups never paid, free, not to be paid by hand: {})",
                st.unpaid_set_ups.join(", ")
            )
        }
    ));
    let batch = journal
        .batch_by_id(batch.id)?
        .unwrap_or_else(|| batch.clone());
    status(ctx, &batch, &st)
}

/// A batch always works where it was recorded: an `--endpoint-url` other than its own is
/// refused.
pub(super) fn same_endpoint(
    batch: &crate::journal::BatchInfo,
    target: &ProlificTarget,
    endpoint: Option<&str>,
) -> Result<(), Failure> {
    let recorded = match target {
        ProlificTarget::Testing(u) => Some(u.as_str()),
        _ => None,
    };
    if let Some(given) = endpoint
        && Some(given.trim_end_matches('/')) != recorded
    {
        return Err(Failure::new(
            FailureKind::TargetMismatch,
            format!(
                "batch {} works through {}; --endpoint-url would send it to {given}",
                batch.name,
                recorded.unwrap_or("Prolific's own API")
            ),
        )
        .with_fix(
            "A batch always works where it was recorded. Remove --endpoint-url to resume it there.",
        ));
    }
    Ok(())
}

/// `payout resume` of a Prolific batch (bonuses or groups): where it was recorded, with the
/// token payout finds.
pub async fn resume_prolific(
    batch: &crate::journal::BatchInfo,
    mut journal: Journal,
    endpoint: Option<&str>,
    yes: bool,
    signals: Option<Signals>,
    ctx: &Ctx,
) -> Outcome {
    let (target, platform) = platform_of_batch(batch)?;
    same_endpoint(batch, &target, endpoint)?;
    if target == ProlificTarget::Production {
        crate::batch::need_terminal(&super::Terminal, yes)?;
    }
    let groups = crate::journal::members::is_group_batch(journal.conn(), batch.id)?;
    let banner = match &target {
        ProlificTarget::Testing(u) => format!("PROLIFIC testing endpoint {u}, not Prolific"),
        _ => "PROLIFIC (production)".to_owned(),
    };
    ctx.printer.say(format!(
        "payout · {banner}{} · resuming {} ({}) · token {}",
        if groups { " · participant groups" } else { "" },
        batch.name,
        batch.source,
        platform.token_hint()
    ));
    ctx.put("batch", &batch.name);
    let stop = Arc::new(StopSignal::default());
    let ui = CliUi::new(ctx, yes);
    let platform = Arc::new(platform);
    let ended = if groups {
        let cfg = crate::engine::MemberConfig::default();
        let work =
            crate::batch::groups::resume(batch, platform, &mut journal, &ui, stop.clone(), &cfg);
        drive(work, signals, &stop, ctx).await
    } else {
        let cfg = ChunkConfig::default();
        let work =
            crate::batch::prolific::resume(batch, platform, &mut journal, &ui, stop.clone(), &cfg);
        drive(work, signals, &stop, ctx).await
    };
    render_end(ended?, ctx)
}

/// Starts the built-in Prolific emulator with one workspace and a study in which every ID the
/// file names took part (a participant ID gets one submission, a submission ID one
/// participant). Invalid files are left to the batch to refuse with their lines.
async fn start_emulator_for(
    bytes: &[u8],
    source: &str,
    options: &ProlificOptions,
    study: Option<&StudyId>,
) -> Result<(crate::emulator::prolific::RunningProlific, Option<StudyId>), Failure> {
    use crate::emulator::prolific::{ProlificConfig, ProlificSeed, RunningProlific};
    use crate::input::{Payee, parse_prolific};
    let mut seed = ProlificSeed::new();
    let ws = seed.workspace("Emulator", "GBP", 100_000_000);
    let mut studies: std::collections::BTreeMap<String, String> = Default::default();
    let mut ensure_study = |seed: &mut ProlificSeed, id: Option<&StudyId>| -> String {
        let key = id.map_or_else(|| "-".to_owned(), |s| s.to_string());
        studies
            .entry(key)
            .or_insert_with(|| match id {
                Some(s) => seed.study_with_id(&ws, s.as_str(), "Emulated study"),
                None => seed.study(&ws, "Emulated study"),
            })
            .clone()
    };
    if let Ok((_, rows)) = parse_prolific(bytes, source, options) {
        let mut seen = std::collections::HashSet::new();
        for r in rows {
            let st = ensure_study(&mut seed, r.study.as_ref().or(study));
            if !seen.insert(format!("{:?}{st}", r.payee)) {
                continue;
            }
            match &r.payee {
                Payee::Participant(p) => {
                    seed.submission(&st, p.as_str());
                }
                Payee::Either(p) => {
                    seed.submission(&st, p);
                }
                Payee::Submission(s) => {
                    let p = seed.participant();
                    seed.submission_with_id(&st, &p, s.as_str());
                }
                Payee::Both(p, s) => {
                    seed.submission_with_id(&st, p.as_str(), s.as_str());
                }
            }
        }
    }
    let default_study = studies.get("-").and_then(|s| StudyId::parse(s).ok());
    let emu = RunningProlific::start_loopback(seed.build(), ProlificConfig::default())
        .await
        .map_err(|e| {
            Failure::new(
                FailureKind::Unreachable,
                format!("failed to start the built-in Prolific emulator: {e}"),
            )
        })?;
    Ok((emu, default_study))
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  payout resolve prolific-3fa2c1 --not-paid   Prolific's dashboard shows no such bonuses: pay them again\n  payout resolve prolific-3fa2c1 --paid       the dashboard shows them paid"
)]
pub struct ResolveArgs {
    /// The batch (as `payout status` names it).
    batch: String,
    #[command(flatten)]
    journal: JournalArgs,
    /// The rows not observed were not paid (checked on Prolific's dashboard): set them up anew.
    #[arg(long, group = "word", required = true)]
    not_paid: bool,
    /// The rows not observed were paid (checked on Prolific's dashboard).
    #[arg(long, group = "word")]
    paid: bool,
}

impl ResolveArgs {
    pub fn quiet(&self) -> bool {
        self.journal.quiet
    }
}

/// `payout resolve`: an operator's word on a Prolific batch's rows that were not observed.
pub async fn resolve(args: ResolveArgs, ctx: &Ctx) -> Outcome {
    let mut journal = Journal::open(&args.journal.path())?;
    let batch = journal.batch_by_name(&args.batch)?.ok_or_else(|| {
        Failure::new(
            FailureKind::NoSuchBatch,
            format!("no batch named {:?}", args.batch),
        )
        .with_fix("`payout status` lists the batches")
    })?;
    let word = if args.paid {
        Resolution::Paid
    } else {
        Resolution::NotPaid
    };
    let n = crate::batch::prolific::resolve(&mut journal, &batch, word).await?;
    ctx.printer.say(match (n, word) {
        (0, _) => format!("Batch {}: no rows are waiting for a word.", batch.name),
        (n, Resolution::NotPaid) => format!(
            "Batch {}: {n} row{} back to pending; the same `payout run` command sets them up anew and pays them.",
            batch.name,
            if n == 1 { "" } else { "s" }
        ),
        (n, Resolution::Paid) => format!(
            "Batch {}: {n} row{} marked paid, on your word.",
            batch.name,
            if n == 1 { "" } else { "s" }
        ),
    });
    Ok(Exit::Ok)
}

/// `payout status` of a Prolific batch: rows by state with their money, chunks, the set-ups
/// never paid and the rows not observed.
pub fn status(
    ctx: &Ctx,
    batch: &crate::journal::BatchInfo,
    s: &crate::journal::chunks::ProlificStatus,
) -> Outcome {
    use crate::money::Money;
    if ctx.json() {
        ctx.put("batch", &batch.name);
        ctx.put("source", &batch.source);
        ctx.put("prolific", s);
        return Ok(Exit::Ok);
    }
    let m = |minor: u64| Money::new(Cents(minor), s.currency).to_string();
    let mut text = format!(
        "Batch {} on Prolific ({})\n  paid          {:>6}  {}\n  awaiting      {:>6}  (paid and accepted, not yet visible on Prolific)\n  not observed  {:>6}\n  pending       {:>6}  {}\n  failed        {:>6}\n",
        batch.name,
        batch.source,
        s.paid,
        m(s.paid_minor),
        s.awaiting,
        s.not_observed,
        s.pending,
        m(s.pending_minor),
        s.failed
    );
    if s.cancelled > 0 {
        text.push_str(&format!(
            "  cancelled     {:>6}  (closed by `payout cancel`; never paid)\n",
            s.cancelled
        ));
    }
    if let Some(closed) = &batch.closed {
        text.push_str(&format!("  the batch is {}\n", closed.how.as_str()));
    }
    if !s.chunks.is_empty() {
        let parts: Vec<String> = s.chunks.iter().map(|(k, n)| format!("{n} {k}")).collect();
        text.push_str(&format!("  chunks: {}\n", parts.join(", ")));
    }
    if !s.not_observed_rows.is_empty() {
        text.push_str(
            "\nNot observed (check the study's bonuses on Prolific, then `payout resolve`):\n",
        );
        for (line, sub, minor, before) in &s.not_observed_rows {
            text.push_str(&format!(
                "  line {line}: submission {sub}, {} — it showed {before} (minor units) before the pay\n",
                m(*minor)
            ));
        }
    }
    if !s.unpaid_set_ups.is_empty() {
        text.push_str(&format!(
            "\n{} set-up{} Prolific answered and payout never paid (free; do not pay them by hand): {}\n",
            s.unpaid_set_ups.len(),
            if s.unpaid_set_ups.len() == 1 { "" } else { "s" },
            s.unpaid_set_ups.join(", ")
        ));
    }
    ctx.printer.say(text.trim_end());
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("m").is_err());
    }
}
