//! The command line: argument parsing, the order of the steps, messages with their fixes, exit codes.
//!
//! Each command is a short story over the library's parts; the parts know nothing of the CLI.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::emulator::{EmulatorArgs, EmulatorConfig, RunningEmulator};
use crate::input::{InputOptions, read_bonuses};
use crate::journal::{BatchInfo, ItemRecord, Journal, JournalError};
use crate::plan::{Target, Totals, plan};
use crate::platform::{
    Balance, CredentialSource, ErrorClass, MturkPlatform, PRODUCTION_ENDPOINT, Platform,
    PlatformError, PlatformSetupError, SANDBOX_ENDPOINT, Systemic,
};
use crate::report::{Printer, Progress, Summary, plan_text, plural, report_rows, write_csv};
use crate::runner::{RunnerConfig, StopReason, StopSignal, read_with_retries, run_batch};

/// Exit statuses, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Everything paid or skipped.
    Ok = 0,
    /// payout itself failed (journal unreadable, disk full, ...).
    Error = 1,
    /// Bad command-line usage (clap's own code).
    Usage = 2,
    /// Done, but MTurk refused some rows.
    SomeFailed = 3,
    /// Payments remain open: run the same command again (or `payout resume`).
    Incomplete = 4,
    /// The input file is invalid; nothing was sent or recorded.
    InvalidInput = 5,
    /// payout refused to start (production without --yes, journal in use, target mismatch, credentials).
    Refused = 6,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "payout",
    version,
    about = "Pay MTurk bonuses from a CSV file, exactly once",
    long_about = "Pay Amazon Mechanical Turk bonuses from a CSV file, exactly once.\n\nEvery payment is journaled before and after its call; running the same command again resumes an interrupted batch and never pays a row twice."
)]
pub struct Cli {
    /// The journal (SQLite) recording every batch and payment.
    #[arg(long, global = true, env = "PAYOUT_JOURNAL", value_name = "PATH")]
    journal: Option<PathBuf>,
    /// Print only errors and the final summary.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate, plan, journal and pay a bonuses CSV (re-run it to resume).
    Run(RunArgs),
    /// Continue an interrupted batch without its file.
    Resume(ResumeArgs),
    /// Counts, money and last errors of a batch.
    Status(StatusArgs),
    /// One line per input row: outcome, attempts, error, request token, times.
    Report(ReportArgs),
    /// Run a local MTurk that speaks the real wire protocol.
    Emulator(EmulatorArgs),
}

#[derive(Args, Debug, Clone)]
struct TargetArgs {
    /// Pay in the MTurk sandbox (the default): no real money.
    #[arg(long, group = "target")]
    sandbox: bool,
    /// Pay real money.
    #[arg(long, group = "target")]
    production: bool,
    /// Pay into a built-in emulator started for this run: no AWS account needed.
    #[arg(long, group = "target")]
    emulator: bool,
    /// Send the target's calls to this endpoint instead (for example a `payout emulator`).
    #[arg(long, env = "PAYOUT_ENDPOINT_URL", value_name = "URL")]
    endpoint_url: Option<String>,
    /// AWS profile from ~/.aws/credentials.
    #[arg(long, env = "AWS_PROFILE")]
    profile: Option<String>,
}

impl TargetArgs {
    fn chosen(&self) -> Option<Target> {
        if self.production {
            Some(Target::Production)
        } else if self.emulator {
            Some(Target::Emulator)
        } else if self.sandbox {
            Some(Target::Sandbox)
        } else {
            None
        }
    }
}

#[derive(Args, Debug, Clone)]
struct PaceArgs {
    /// Calls in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    concurrency: u32,
    /// Requests per second at most, and where payout starts. Without it payout starts at 5/s
    /// and speeds up to 20/s while MTurk does not throttle; it always slows down when MTurk does.
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Attempts per payment on faults and lost answers before leaving it for a later run.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_attempts: u32,
    /// First retry delay in milliseconds (doubles on each retry, with jitter).
    #[arg(long, default_value_t = 250, hide = true)]
    backoff_ms: u64,
    /// How long one call may take before its answer is treated as lost, in milliseconds.
    #[arg(long, default_value_t = 30_000, hide = true)]
    call_timeout_ms: u64,
    /// Confirm a production run (required with --production).
    #[arg(long)]
    yes: bool,
    /// Write a machine-readable summary to stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The bonuses CSV: WorkerId, AssignmentId, BonusAmount, Reason (or common aliases).
    file: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    pace: PaceArgs,
    /// Read the amount from this column (for example in a batch-results file).
    #[arg(long, value_name = "NAME")]
    amount_column: Option<String>,
    /// Reason for rows without one (shown to the worker).
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Pay rows that repeat another row's worker, assignment, amount and reason.
    #[arg(long)]
    allow_duplicates: bool,
    /// Pay rows that an earlier batch in this journal already paid.
    #[arg(long)]
    allow_repeat: bool,
    /// Validate and show the plan and balance, then stop: nothing is paid or journaled.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args, Debug)]
struct ResumeArgs {
    /// The batch (as `payout status` names it); the latest unfinished one by default.
    batch: Option<String>,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    pace: PaceArgs,
}

#[derive(Args, Debug)]
struct StatusArgs {
    /// The batch; the latest by default.
    batch: Option<String>,
    /// Write JSON to stdout.
    #[arg(long)]
    json: bool,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
enum Format {
    Csv,
    Json,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// The batch; the latest by default.
    batch: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Write to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Parses the command line and runs it; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let printer = Printer::detect(cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            printer.warn(format!("error: failed to start the async runtime: {e}"));
            return Exit::Error.into();
        }
    };
    let journal = cli.journal.clone().unwrap_or_else(default_journal_path);
    let exit = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(args, &journal, printer).await,
            Command::Resume(args) => resume(args, &journal, printer).await,
            Command::Status(args) => status(args, &journal, printer),
            Command::Report(args) => report(args, &journal, printer),
            Command::Emulator(args) => match crate::emulator::serve_cli(args).await {
                Ok(()) => Exit::Ok,
                Err(e) => {
                    printer.warn(format!("error: the emulator failed: {e}"));
                    Exit::Error
                }
            },
        }
    });
    // Calls still under way after a second Ctrl-C are abandoned, not awaited.
    runtime.shutdown_timeout(Duration::from_millis(100));
    exit.into()
}

/// `$XDG_DATA_HOME/payout/journal.sqlite` (or the platform's data directory).
fn default_journal_path() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("payout")
        .join("journal.sqlite")
}

async fn run(args: RunArgs, journal_path: &Path, printer: Printer) -> Exit {
    let target = args.target.chosen().unwrap_or(Target::Sandbox);
    let opts = InputOptions {
        amount_column: args.amount_column.clone(),
        default_reason: args.reason.clone(),
        allow_duplicates: args.allow_duplicates,
        ..InputOptions::default()
    };
    let rows = match read_bonuses(&args.file, &opts) {
        Ok(rows) => rows,
        Err(e) => {
            printer.warn(format!("error: {e}"));
            printer.warn("Fix these lines and run the same command again.");
            if args.pace.json {
                let value = serde_json::json!({
                    "file": e.file,
                    "problems": e.problems,
                    "exit_code": Exit::InvalidInput as u8,
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).expect("serialisable")
                );
            }
            return Exit::InvalidInput;
        }
    };
    // Options that change what the batch is: a repeat, or another endpoint (an emulator is not
    // the sandbox, even when reached with --sandbox --endpoint-url).
    let variant = format!(
        "repeat={}\x1fendpoint={}",
        args.allow_repeat,
        args.target.endpoint_url.as_deref().unwrap_or("")
    );
    let plan = plan(&rows, target, &variant);
    let source = args.file.display().to_string();
    printer.say(format!(
        "payout · {} · {} · {}",
        target.banner(),
        source,
        plural(plan.totals.rows, "row")
    ));
    let session = match Session::connect(target, &args.target, &args.pace, printer).await {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    if args.dry_run {
        let balance = session.balance(&args.pace, printer).await;
        printer.say(format!(
            "Plan (dry run):\n{}",
            plan_text(&plan.totals, balance.as_ref())
        ));
        if let Some(b) = balance.filter(|b| b.available < plan.totals.grand_total()) {
            printer.say(format!(
                "The balance is {} short of the total.",
                plan.totals.grand_total() - b.available
            ));
        }
        printer.say("Dry run: nothing was paid and nothing was journaled.");
        // A preflight that could not read the balance has not shown the account is usable.
        return if balance.is_some() {
            Exit::Ok
        } else {
            Exit::Refused
        };
    }
    if let Some(exit) = refuse_production(target, &args.pace, printer) {
        return exit;
    }
    let mut journal = match open_journal(journal_path, printer) {
        Ok(j) => j,
        Err(exit) => return exit,
    };
    let existing = match journal.batch_by_fingerprint(&plan.fingerprint) {
        Ok(b) => b,
        Err(e) => return journal_failed(printer, e),
    };
    let batch = match existing {
        Some(b) => {
            printer.say(format!(
                "Continuing batch {} (same file, same target).",
                b.name
            ));
            b
        }
        None => match journal.create_batch(
            &plan,
            &source,
            args.target.endpoint_url.as_deref(),
            args.allow_repeat,
        ) {
            Ok(b) => {
                printer.say(format!("New batch {}.", b.name));
                b
            }
            Err(e) => return journal_failed(printer, e),
        },
    };
    pay(session, journal, batch, &args.pace, printer).await
}

async fn resume(args: ResumeArgs, journal_path: &Path, printer: Printer) -> Exit {
    let journal = match open_journal(journal_path, printer) {
        Ok(j) => j,
        Err(exit) => return exit,
    };
    let found = match &args.batch {
        Some(name) => journal.batch_by_name(name),
        None => journal.latest_batch(true),
    };
    let batch = match found {
        Ok(Some(b)) => b,
        Ok(None) => {
            match &args.batch {
                Some(name) => printer.warn(format!(
                    "error: no batch named {name} in {}; `payout status` shows the latest",
                    journal_path.display()
                )),
                None => printer.say("Nothing to resume: every batch in the journal is finished."),
            }
            return if args.batch.is_some() {
                Exit::Refused
            } else {
                Exit::Ok
            };
        }
        Err(e) => return journal_failed(printer, e),
    };
    if let Some(t) = args.target.chosen().filter(|t| *t != batch.target) {
        printer.warn(format!(
            "error: batch {} pays on {}, not {}; resuming it elsewhere is refused.",
            batch.name,
            batch.target.banner(),
            t.banner()
        ));
        return Exit::Refused;
    }
    if let Some(exit) = refuse_production(batch.target, &args.pace, printer) {
        return exit;
    }
    printer.say(format!(
        "payout · {} · resuming {} ({})",
        batch.target.banner(),
        batch.name,
        batch.source
    ));
    let endpoint = args.target.endpoint_url.clone().or(batch.endpoint.clone());
    let mut target_args = args.target.clone();
    target_args.endpoint_url = endpoint;
    let session = match Session::connect(batch.target, &target_args, &args.pace, printer).await {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    pay(session, journal, batch, &args.pace, printer).await
}

/// Until the rehearsal gate exists, production at least needs an explicit `--yes`.
fn refuse_production(target: Target, pace: &PaceArgs, printer: Printer) -> Option<Exit> {
    (target == Target::Production && !pace.yes).then(|| {
        printer.warn(
            "error: --production pays real money; add --yes to confirm (rehearse first with --sandbox).",
        );
        Exit::Refused
    })
}

fn open_journal(path: &Path, printer: Printer) -> Result<Journal, Exit> {
    Journal::open(path).map_err(|e| match e {
        JournalError::Locked(p) => {
            printer.warn(format!(
                "error: another payout is running on the journal {}; wait for it to finish (or stop it), then run this again.",
                p.display()
            ));
            Exit::Refused
        }
        JournalError::TooNew { .. } => {
            printer.warn(format!("error: {e}; upgrade payout."));
            Exit::Refused
        }
        other => journal_failed(printer, other),
    })
}

fn journal_failed(printer: Printer, e: JournalError) -> Exit {
    let mut text = format!("error: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    printer.warn(text);
    Exit::Error
}

/// A connected platform, and the emulator behind it when the target is the built-in one.
struct Session {
    platform: Arc<MturkPlatform>,
    _emulator: Option<RunningEmulator>,
}

impl Session {
    async fn connect(
        target: Target,
        args: &TargetArgs,
        pace: &PaceArgs,
        printer: Printer,
    ) -> Result<Session, Exit> {
        let timeout = Duration::from_millis(pace.call_timeout_ms);
        let mut emulator = None;
        let (endpoint, creds) = match (target, &args.endpoint_url) {
            (Target::Emulator, None) => {
                let emu =
                    RunningEmulator::start(EmulatorConfig::default(), ([127, 0, 0, 1], 0).into())
                        .await
                        .map_err(|e| {
                            printer
                                .warn(format!("error: failed to start the built-in emulator: {e}"));
                            Exit::Error
                        })?;
                let url = emu.url();
                emulator = Some(emu);
                (url, emulator_credentials())
            }
            (Target::Emulator, Some(url)) => (url.clone(), emulator_credentials()),
            (Target::Sandbox, url) => (
                url.clone().unwrap_or_else(|| SANDBOX_ENDPOINT.into()),
                CredentialSource::Standard {
                    profile: args.profile.clone(),
                },
            ),
            (Target::Production, url) => (
                url.clone().unwrap_or_else(|| PRODUCTION_ENDPOINT.into()),
                CredentialSource::Standard {
                    profile: args.profile.clone(),
                },
            ),
        };
        let platform = MturkPlatform::connect(&endpoint, creds, timeout)
            .await
            .map_err(|e| {
                printer.warn(format!("error: {e}"));
                printer.warn(match e {
                    PlatformSetupError::NoCredentials(_) => "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (from the IAM user's credentials.csv), or add them to ~/.aws/credentials and pass --profile. To try payout without an account, use --emulator.",
                    PlatformSetupError::TemporaryCredentials => "MTurk does not accept IAM role, SSO or other temporary credentials. Use the access key of an IAM user with AmazonMechanicalTurkFullAccess.",
                });
                Exit::Refused
            })?;
        Ok(Session {
            platform: Arc::new(platform),
            _emulator: emulator,
        })
    }

    /// The account balance, or `None` (with a printed reason) when it cannot be had.
    async fn balance(&self, pace: &PaceArgs, printer: Printer) -> Option<Balance> {
        match read_with_retries(
            &runner_config(pace),
            None,
            None,
            &mut fastrand::Rng::with_seed(0),
            || self.platform.balance(),
        )
        .await
        {
            Ok(b) => Some(b),
            Err(e) => {
                printer.warn(format!("error: failed to read the account balance: {e}"));
                if let Some(hint) = hint_for(&e) {
                    printer.warn(hint);
                }
                None
            }
        }
    }
}

fn emulator_credentials() -> CredentialSource {
    CredentialSource::Fixed {
        access_key_id: "AKIDPAYOUTEMULATOR".into(),
        secret_access_key: "payout-emulator-secret".into(),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && (0.2..=100_000.0).contains(&r) => Ok(r),
        _ => Err("a number of requests per second from 0.2 to 100000, such as 3 or 0.5".into()),
    }
}

/// MTurk publishes no limit; users report 1–3 requests/s as always safe and throttling above
/// that on large batches. Start a little above that and let the pacer find the real limit.
const DEFAULT_START_RATE: f64 = 5.0;
const DEFAULT_MAX_RATE: f64 = 20.0;

fn runner_config(pace: &PaceArgs) -> RunnerConfig {
    RunnerConfig {
        concurrency: pace.concurrency as usize,
        start_rate: pace.rate.unwrap_or(DEFAULT_START_RATE),
        max_rate: pace.rate.unwrap_or(DEFAULT_MAX_RATE),
        max_attempts: pace.max_attempts,
        backoff_base: Duration::from_millis(pace.backoff_ms),
        backoff_cap: Duration::from_secs(20).max(Duration::from_millis(pace.backoff_ms)),
        seed: 0,
    }
}

/// The step that fixes a systemic error.
fn hint_for(e: &PlatformError) -> Option<&'static str> {
    match e.class {
        ErrorClass::Systemic(s) => Some(systemic_hint(s)),
        _ => None,
    }
}

fn systemic_hint(s: Systemic) -> &'static str {
    match s {
        Systemic::InsufficientFunds => {
            "Add funds at https://requester.mturk.com/prepayments/new, then run the same command again."
        }
        Systemic::Credentials => {
            "Check the access key and secret (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or --profile): they must belong to an IAM user with AmazonMechanicalTurkFullAccess. Then run the same command again."
        }
        Systemic::AccountNotLinked => {
            "Link your AWS account to your requester account at https://requester.mturk.com/developer (and, for the sandbox, at https://requester.mturksandbox.com/developer), then run the same command again."
        }
    }
}

/// Checks the balance against what remains, pays, and summarises. Shared by `run` and `resume`.
async fn pay(
    session: Session,
    mut journal: Journal,
    batch: BatchInfo,
    pace: &PaceArgs,
    printer: Printer,
) -> Exit {
    if let Err(e) = journal.reconcile_with_other_batches(&batch) {
        return journal_failed(printer, e);
    }
    let items = match journal.items(batch.id) {
        Ok(items) => items,
        Err(e) => return journal_failed(printer, e),
    };
    let open: Vec<_> = items.into_iter().filter(|i| i.state.is_open()).collect();
    let remaining = Totals::of(open.iter().map(|i| &i.key));
    if open.is_empty() {
        printer.say(format!("Batch {} has nothing left to pay.", batch.name));
        return finish(&journal, &batch, pace.json, printer, None);
    }
    let Some(balance) = session.balance(pace, printer).await else {
        printer.say("Nothing was paid.");
        return Exit::Incomplete;
    };
    printer.say(format!(
        "To pay now:\n{}",
        plan_text(&remaining, Some(&balance))
    ));
    if balance.available < remaining.grand_total() {
        let missing = remaining.grand_total() - balance.available;
        printer.warn(format!(
            "error: the balance ({}) cannot cover the total with fees ({}): {} is missing. Nothing was paid.",
            balance.available,
            remaining.grand_total(),
            missing
        ));
        printer.warn(systemic_hint(Systemic::InsufficientFunds));
        // The batch has open payments, so its summary ends as incomplete.
        return finish(&journal, &batch, pace.json, printer, None);
    }

    let stop = Arc::new(StopSignal::default());
    let signals = tokio::spawn(watch_signals(stop.clone(), printer));
    let cfg = runner_config(pace);
    let progress = Arc::new(Progress::new(printer, open.len() as u64, cfg.start_rate));
    let writer = Arc::new(journal.into_writer());
    let result = run_batch(
        session.platform.clone(),
        writer.clone(),
        batch.id,
        open,
        cfg,
        progress.clone(),
        stop.clone(),
    )
    .await;
    signals.abort();
    progress.finish();
    let journal = match Arc::try_unwrap(writer) {
        Ok(w) => w.finish(),
        Err(_) => unreachable!("every task holding the writer has ended"),
    };
    let end = match result {
        Ok(end) => end,
        Err(e) => return journal_failed(printer, e),
    };
    finish(&journal, &batch, pace.json, printer, end.stop)
}

/// First Ctrl-C (or SIGTERM): stop dispatching, let calls under way finish. Second: quit now.
async fn watch_signals(stop: Arc<StopSignal>, printer: Printer) {
    use tokio::signal::unix::{SignalKind, signal};
    // Both streams are registered once, up front: a signal arriving while the first is being
    // handled is kept for the second wait instead of being lost.
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        printer.warn("warning: cannot watch for Ctrl-C; stopping will not drain calls under way.");
        return;
    };
    let mut next = async || {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    };
    next().await;
    printer.warn("Stopping: finishing the calls under way (press Ctrl-C again to quit at once; the batch resumes either way).");
    stop.stop(StopReason::User);
    next().await;
    printer.warn("Quitting now; payments under way will be checked with MTurk on the next run.");
    std::process::exit(Exit::Incomplete as i32);
}

/// Prints (and with `--json` writes) the batch's summary; decides the exit status.
fn finish(
    journal: &Journal,
    batch: &BatchInfo,
    json: bool,
    printer: Printer,
    stop: Option<StopReason>,
) -> Exit {
    let items = match journal.items(batch.id) {
        Ok(i) => i,
        Err(e) => return journal_failed(printer, e),
    };
    let summary = Summary::new(batch, &items);
    let exit = if summary.pending > 0 {
        Exit::Incomplete
    } else if summary.failed > 0 {
        Exit::SomeFailed
    } else {
        Exit::Ok
    };
    printer.warn(format!(
        "Batch {} on {}:\n{}",
        batch.name,
        batch.target.banner(),
        summary.text()
    ));
    match &stop {
        Some(StopReason::Systemic(kind, message)) => {
            printer.warn(format!("\nStopped: {message}"));
            printer.warn(systemic_hint(*kind));
        }
        Some(StopReason::User) => printer.warn("\nStopped on request."),
        None => {}
    }
    if exit == Exit::Incomplete {
        printer.warn(format!(
            "\n{} still open. Run the same command again, or `payout resume {}`, to finish; nothing will be paid twice.",
            plural(summary.pending, "payment"),
            batch.name
        ));
    }
    if json {
        let value = serde_json::json!({
            "summary": summary,
            "exit_code": exit as u8,
            "stopped": stop.as_ref().map(|s| match s {
                StopReason::User => "user".to_owned(),
                StopReason::Systemic(_, m) => m.clone(),
            }),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("serialisable")
        );
    }
    exit
}

fn pick_batch(journal: &Journal, name: Option<&str>, printer: Printer) -> Result<BatchInfo, Exit> {
    let found = match name {
        Some(n) => journal.batch_by_name(n),
        None => journal.latest_batch(false),
    };
    match found {
        Ok(Some(b)) => Ok(b),
        Ok(None) => {
            printer.warn(match name {
                Some(n) => format!("error: no batch named {n} in {}", journal.path().display()),
                None => format!("error: no batch yet in {}", journal.path().display()),
            });
            Err(Exit::Refused)
        }
        Err(e) => Err(journal_failed(printer, e)),
    }
}

/// A batch and its payments, read without taking the journal's lock (for `status`, `report`).
fn read_batch(
    journal_path: &Path,
    name: Option<&str>,
    printer: Printer,
) -> Result<(BatchInfo, Vec<ItemRecord>), Exit> {
    let journal = Journal::open_read_only(journal_path).map_err(|e| journal_failed(printer, e))?;
    let batch = pick_batch(&journal, name, printer)?;
    let items = journal
        .items(batch.id)
        .map_err(|e| journal_failed(printer, e))?;
    Ok((batch, items))
}

fn status(args: StatusArgs, journal_path: &Path, printer: Printer) -> Exit {
    let (batch, items) = match read_batch(journal_path, args.batch.as_deref(), printer) {
        Ok(b) => b,
        Err(exit) => return exit,
    };
    let summary = Summary::new(&batch, &items);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("serialisable")
        );
    } else {
        println!(
            "Batch {} on {} ({})\n{}",
            batch.name,
            batch.target.banner(),
            batch.source,
            summary.text()
        );
        let last_errors: Vec<_> = items
            .iter()
            .filter(|i| i.state.is_open() && i.error.is_some())
            .take(5)
            .collect();
        if !last_errors.is_empty() {
            println!("\nLast errors on open payments:");
            for i in last_errors {
                println!(
                    "  line {}: {}",
                    i.line,
                    i.error.as_deref().unwrap_or_default()
                );
            }
        }
    }
    Exit::Ok
}

fn report(args: ReportArgs, journal_path: &Path, printer: Printer) -> Exit {
    let (batch, items) = match read_batch(journal_path, args.batch.as_deref(), printer) {
        Ok(b) => b,
        Err(exit) => return exit,
    };
    let rows = report_rows(&items);
    let out: Box<dyn std::io::Write> = match &args.output {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Box::new(std::io::BufWriter::new(f)),
            Err(e) => {
                printer.warn(format!("error: failed to create {}: {e}", path.display()));
                return Exit::Error;
            }
        },
        None => Box::new(std::io::stdout().lock()),
    };
    let written = match args.format {
        Format::Csv => write_csv(&rows, out),
        Format::Json => {
            let mut out = out;
            serde_json::to_writer_pretty(&mut out, &rows)
                .map_err(std::io::Error::other)
                .and_then(|()| std::io::Write::write_all(&mut out, b"\n"))
        }
    };
    if let Err(e) = written {
        printer.warn(format!("error: failed to write the report: {e}"));
        return Exit::Error;
    }
    if let Some(path) = &args.output {
        printer.say(format!(
            "Wrote {} for batch {} to {}.",
            plural(rows.len() as u64, "row"),
            batch.name,
            path.display()
        ));
    }
    Exit::Ok
}
