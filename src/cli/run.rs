//! `payout run FILE`: validate the whole file, plan it, check the account, pass production's
//! gate, record the batch (or find it again), then do it. Running the same command again
//! resumes it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;

use super::args::{JournalArgs, PaceArgs, TargetArgs};
use super::confirm::{confirm, need_terminal, rehearsal_gate};
use super::execute::watch_sync;
use super::execute::{Signals, execute_batch, interrupted, open_totals, start_session};
use super::new_batch::{NewOptions, plan_new, record_new};
use super::{Ctx, Outcome, dry_run};
use crate::batch::mturk::Place;
use crate::error::{Failure, FailureKind};
use crate::input::{Input, InputErrors, InputOptions, Row, scan_input, stop_requested};
use crate::journal::{BatchKind, Journal};
use crate::money::Cents;
use crate::op::QualRef;
use crate::output::plural;
use crate::plan::{NoPrior, PlanConfig, PlanSummary, Planner};

fn parse_dollars(s: &str) -> Result<Cents, String> {
    Cents::parse_bonus(s).map_err(|e| format!("{s:?} {e}"))
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  payout run bonuses.csv --dry-run       check the file and the account, show the plan and fees\n  payout run bonuses.csv                 pay in the sandbox\n  payout run bonuses.csv --production    pay for real (after a rehearsal; asks to confirm)\n  payout run workers.csv --notify        qualification changes, e-mailing workers on grants"
)]
pub struct RunArgs {
    /// The CSV: bonuses (WorkerId, AssignmentId, BonusAmount, Reason) or qualification changes.
    file: PathBuf,
    #[command(flatten)]
    pub journal: JournalArgs,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    pub pace: PaceArgs,
    /// Read the amount from this column (for example in a batch-results file).
    #[arg(long, value_name = "NAME")]
    amount_column: Option<String>,
    /// Reason for rows without one (shown to the worker).
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Keep rows that repeat another row exactly (each is done once).
    #[arg(long)]
    allow_duplicates: bool,
    /// What the file holds, when its header does not say: bonus or qualification.
    #[arg(long, value_name = "KIND")]
    kind: Option<BatchKind>,
    /// The qualification type (ID or name) of every row of an API-style qualification file.
    #[arg(long, value_name = "ID|NAME")]
    qualification: Option<String>,
    /// Let MTurk e-mail workers about the scores they are granted (off by default).
    #[arg(long)]
    notify: bool,
    /// Reason recorded with each block of a website file (MTurk requires one).
    #[arg(long, value_name = "TEXT")]
    block_reason: Option<String>,
    /// Do again operations that an earlier batch in this journal already did.
    #[arg(long)]
    allow_repeat: bool,
    /// Pay bonuses for assignments another batch already paid a different bonus for (a further round).
    #[arg(long)]
    allow_overlap: bool,
    /// Cancel older unfinished batches this file overlaps (after verifying what they sent).
    #[arg(long)]
    supersede: bool,
    /// Create qualification types the file names that do not exist yet (once each).
    #[arg(long)]
    create_missing: bool,
    /// Refuse any bonus above this many dollars (catches 50 typed for 0.50).
    #[arg(long, value_name = "DOLLARS", default_value = "25.00", value_parser = parse_dollars)]
    max_bonus: Cents,
    /// Refuse the batch if bonuses plus fees come to more than this many dollars.
    #[arg(long, value_name = "DOLLARS", value_parser = parse_dollars)]
    max_total: Option<Cents>,
    /// Run in production without a rehearsal of this file (recorded with the batch).
    #[arg(long)]
    skip_rehearsal: bool,
    /// Validate, check the account and every operation (read-only), show the plan: nothing is
    /// sent. A production dry run whose checks pass is the rehearsal production needs.
    #[arg(long)]
    dry_run: bool,
    /// The platform: mturk, or prolific (told from the file's header when not given).
    #[arg(long, value_name = "NAME", value_parser = ["mturk", "prolific"])]
    platform: Option<String>,
    /// Prolific: the study every row is paid in (or a study_id column).
    #[arg(long, value_name = "ID")]
    study: Option<String>,
    /// Prolific: the workspace that pays, when the token can use several.
    #[arg(long, value_name = "ID")]
    workspace: Option<String>,
    /// Prolific: rows per set-up (one money call at a time).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    chunk_size: u32,
    /// Prolific: how long a paid chunk may take to show on its submissions before it is "not
    /// observed" and left for you to check (15s, 10m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = super::prolific::parse_duration)]
    settle: std::time::Duration,
    /// Prolific: the participant group of every row that names none (a name or an ID).
    #[arg(long, value_name = "NAME|ID")]
    group: Option<String>,
    /// Prolific: like --group, for a group used as a block list (the plan says what that means).
    #[arg(long, value_name = "NAME|ID")]
    block_list: Option<String>,
    /// Prolific groups: rows that say no action add their participant (the default).
    #[arg(long, conflicts_with = "remove")]
    add: bool,
    /// Prolific groups: rows that say no action remove their participant.
    #[arg(long)]
    remove: bool,
    /// Operations a dry run checks at most (tests make it small).
    #[arg(long, default_value_t = dry_run::CHECKED_AT_MOST, hide = true)]
    checked_at_most: usize,
}

/// The input file, read again by each pass that needs it: never held whole in memory.
pub struct Source {
    input: Input,
    opts: InputOptions,
}

impl Source {
    /// The file of `args`; a pipe or FIFO is read once now, into a private spool beside the
    /// journal (see [`Input`]).
    fn new(args: &RunArgs) -> Result<Source, Failure> {
        let journal = args.journal.path();
        let input = Input::open(&args.file, journal.parent()).map_err(|e| {
            if stop_requested() {
                return interrupted();
            }
            Failure::new(
                FailureKind::InvalidInput,
                format!("failed to read {}: {e}", args.file.display()),
            )
            .with_fix("Give a file payout can read to its end (a pipe is read once, into a private copy).")
        })?;
        Ok(Source {
            input,
            opts: InputOptions {
                amount_column: args.amount_column.clone(),
                default_reason: args.reason.clone(),
                allow_duplicates: args.allow_duplicates,
                kind: args.kind,
                qualification: args.qualification.clone(),
                notify: args.notify,
                block_reason: args.block_reason.clone(),
            },
        })
    }

    /// One pass over the file: every valid operation to `sink`, or every problem.
    pub fn scan(&self, sink: &mut dyn FnMut(Row)) -> Result<(), InputErrors> {
        scan_input(&self.input, &self.opts, sink).map(|_| ())
    }

    /// Another pass over the file the first pass validated, without its repeat check: the
    /// caller compares the pass's fingerprint with the first's before it trusts the rows.
    pub fn rescan(&self, sink: &mut dyn FnMut(Row)) -> Result<(), InputErrors> {
        crate::input::rescan_input(&self.input, &self.opts, sink).map(|_| ())
    }

    pub fn name(&self) -> String {
        self.input.path().display().to_string()
    }
}

/// Files at least this large are announced before they are checked.
const LARGE_FILE_BYTES: u64 = 1 << 20;

/// What the first pass learns: the batch's identity and totals, the names it uses, the rows
/// over the caps.
pub struct FirstPass {
    pub probe: PlanSummary,
    pub config: PlanConfig,
    pub names: Vec<String>,
    pub operations: u64,
}

/// The Prolific part of `payout run`: its own batch life (`batch::prolific`).
async fn prolific(args: &RunArgs, ctx: &Ctx) -> Outcome {
    super::prolific::run_prolific(
        super::prolific::ProlificRun {
            file: &args.file,
            journal: &args.journal,
            study: args.study.clone(),
            workspace: args.workspace.clone(),
            production: args.target.production,
            sandbox: args.target.sandbox,
            emulator: args.target.emulator,
            endpoint: args
                .target
                .endpoint_url
                .as_ref()
                .map(|e| e.as_str().to_owned()),
            testing_endpoint: args.target.testing_endpoint,
            dry_run: args.dry_run,
            yes: args.pace.yes,
            skip_rehearsal: args.skip_rehearsal,
            max_bonus: args.max_bonus,
            max_total: args.max_total,
            amount_column: args.amount_column.clone(),
            chunk_size: args.chunk_size as usize,
            settle: args.settle,
            backoff: std::time::Duration::from_millis(args.pace.backoff_ms),
            group: args.group.clone(),
            block_list: args.block_list.clone(),
            action: if args.remove {
                Some(crate::item::MemberAction::Remove)
            } else if args.add {
                Some(crate::item::MemberAction::Add)
            } else {
                None
            },
            create_missing: args.create_missing,
        },
        ctx,
    )
    .await
}

pub async fn run(args: RunArgs, ctx: &Ctx) -> Outcome {
    // A Prolific file: named by --platform, or told from its header when the MTurk reading
    // does not recognise it (the file is not opened an extra time for MTurk's files).
    // Participant groups are Prolific's: their flags name the platform.
    let group_flags = args.group.is_some() || args.block_list.is_some() || args.add || args.remove;
    if group_flags && args.platform.as_deref() == Some("mturk") {
        return Err(Failure::new(
            FailureKind::Usage,
            "--group, --block-list, --add and --remove are for Prolific's participant groups, not MTurk",
        )
        .with_fix("on MTurk, qualification files say the qualification of each row; drop --platform mturk for a Prolific group file"));
    }
    if args.platform.as_deref() == Some("prolific") || group_flags {
        return prolific(&args, ctx).await;
    }
    let mut signals = Signals::install();
    let production = args.target.production;
    if production && !args.dry_run {
        need_terminal(args.pace.yes)?;
    }
    let place = Place::for_new(&args.target.choice()?)?;
    // Reading and validating are synchronous: signals are watched from another thread.
    let watch = watch_sync(&mut signals, ctx.printer);
    let read = Source::new(&args).and_then(|source| {
        let first = first_pass(&args, ctx, &source, &place)?;
        Ok((source, first))
    });
    if watch.end(&mut signals).await {
        return Err(interrupted());
    }
    let (source, first) = match read {
        Err(f)
            if f.kind == FailureKind::InvalidInput
                && args.platform.is_none()
                && super::prolific::header_says_prolific(&args.file) =>
        {
            return prolific(&args, ctx).await;
        }
        r => r?,
    };
    let name = args.file.display().to_string();
    ctx.printer.say(format!(
        "payout · {} · {} · {}",
        place.banner(&ctx.printer),
        name,
        plural(first.operations, "operation")
    ));
    if args.dry_run {
        return dry_run::dry_run(
            ctx,
            &args.journal,
            &args.target,
            &args.pace,
            &source,
            &first,
            &place,
            &name,
            &mut signals,
            args.checked_at_most,
        )
        .await;
    }
    let mut journal = Journal::open(&args.journal.path())?;
    for w in journal.take_warnings() {
        ctx.printer.warn(format!("warning: {w}"));
    }
    let existing = journal.batch_to_continue(&first.probe.fingerprint)?;
    let (rehearsal, unrehearsed) = match (&existing, production) {
        (None, true) => rehearsal_gate(ctx, &journal, &first.probe, &name, args.skip_rehearsal)?,
        _ => (None, false),
    };
    let (session, balance) =
        start_session(&place, &args.target, &args.pace, &ctx.printer, &mut signals).await?;
    let opts = NewOptions {
        allow_repeat: args.allow_repeat,
        allow_overlap: args.allow_overlap,
        supersede: args.supersede,
        create_missing: args.create_missing,
        skip_rehearsal: unrehearsed,
        pace: &args.pace,
    };
    let batch = match existing {
        Some(b) => {
            // The batch is found by its content: another file with the same rows is named.
            ctx.printer.say(if b.source == name {
                format!("Continuing batch {} (same file, same target).", b.name)
            } else {
                format!(
                    "Continuing batch {} of {} ({name} has the same content, same target).",
                    b.name, b.source
                )
            });
            if production {
                let how = journal.rehearsal(&first.probe.content_digest)?;
                confirm(
                    ctx,
                    &open_totals(&journal, &b)?,
                    &balance,
                    how.as_deref(),
                    args.pace.yes,
                )?;
            }
            b
        }
        None => {
            let watch = watch_sync(&mut signals, ctx.printer);
            let plan = plan_new(
                &opts,
                ctx,
                &mut journal,
                &source,
                first.config.clone(),
                &first.probe,
                &first.names,
                &place,
                &session,
            )
            .await;
            if watch.end(&mut signals).await {
                return Err(interrupted());
            }
            let plan = plan?;
            if production {
                confirm(
                    ctx,
                    &plan.summary.totals,
                    &balance,
                    rehearsal.as_deref(),
                    args.pace.yes,
                )?;
            }
            let watch = watch_sync(&mut signals, ctx.printer);
            let recorded = record_new(
                &opts,
                ctx,
                &mut journal,
                plan,
                &place,
                &session,
                &source,
                &name,
            )
            .await;
            if watch.end(&mut signals).await {
                return Err(stopped_while_recording(&journal, &first.probe, &name));
            }
            recorded?
        }
    };
    ctx.put("batch", &batch.name);
    execute_batch(
        ctx, journal, batch, session, &place, &args.pace, balance, signals,
    )
    .await
}

/// A signal during the import: the import was abandoned (the journal is as it was), or, if it
/// had just ended, the batch is recorded and nothing of it was sent.
fn stopped_while_recording(journal: &Journal, probe: &PlanSummary, name: &str) -> Failure {
    match journal.batch_by_fingerprint(&probe.fingerprint) {
        Ok(Some(b)) => Failure::new(
            FailureKind::Interrupted,
            format!(
                "stopped on request: batch {} is recorded and nothing of it was sent",
                b.name
            ),
        )
        .with_fix(format!(
            "Run the same command again (or `payout resume {}`) to do it.",
            b.name
        )),
        _ => Failure::new(
            FailureKind::Interrupted,
            format!("stopped on request while importing {name}; nothing was recorded or sent"),
        )
        .with_fix("Run the same command again when you are ready."),
    }
}

/// Reads and validates the whole file once: its identity and totals planned as it goes, the
/// caps checked, the qualification names gathered. With any problem, nothing else happens.
fn first_pass(
    args: &RunArgs,
    ctx: &Ctx,
    source: &Source,
    place: &Place,
) -> Result<FirstPass, Failure> {
    let config = PlanConfig {
        kind: BatchKind::Bonus,
        target: place.target,
        endpoint: place.endpoint.clone(),
        allow_repeat: args.allow_repeat,
        allow_overlap: args.allow_overlap,
        allow_duplicates: args.allow_duplicates,
    };
    let mut none = NoPrior;
    let mut planner = Planner::new(config.clone(), &mut none);
    let mut names = BTreeSet::new();
    let mut caps = Caps::new(args.max_bonus, args.max_total);
    let mut operations = 0u64;
    // A file that takes a moment to check says so: the user sees what payout is doing, and
    // that Ctrl-C is heard.
    if let Some(bytes) = source.input.size().filter(|b| *b >= LARGE_FILE_BYTES) {
        ctx.printer.say(format!(
            "Checking {} ({bytes} bytes{})…",
            source.name(),
            if source.input.spooled() {
                ", read from a pipe into a private copy"
            } else {
                ""
            }
        ));
    }
    let scanned = source.scan(&mut |row| {
        operations += 1;
        caps.check(&row);
        if let Some(n) = row.op.qualification().and_then(QualRef::name) {
            names.insert(n.to_owned());
        }
        // Planning against nothing cannot fail.
        let _ = planner.push(row);
    });
    if let Err(e) = scanned {
        ctx.put("file", &e.file);
        ctx.put("problems", &e.problems);
        ctx.put("problems_total", e.total);
        return Err(
            Failure::new(FailureKind::InvalidInput, e.to_string().trim_end())
                .with_fix("Fix these lines and run the same command again."),
        );
    }
    caps.finish(ctx)?;
    let kind = planner.kind();
    Ok(FirstPass {
        probe: planner.finish(),
        config: PlanConfig { kind, ..config },
        names: names.into_iter().collect(),
        operations,
    })
}

/// `--max-bonus` and `--max-total`, checked row by row: refused before any call, naming the
/// rows.
struct Caps {
    max_bonus: Cents,
    max_total: Option<Cents>,
    over: Vec<String>,
    over_count: u64,
    largest: Cents,
    total: Cents,
}

impl Caps {
    fn new(max_bonus: Cents, max_total: Option<Cents>) -> Caps {
        Caps {
            max_bonus,
            max_total,
            over: Vec::new(),
            over_count: 0,
            largest: Cents::ZERO,
            total: Cents::ZERO,
        }
    }

    fn check(&mut self, row: &Row) {
        let Some(amount) = row.op.amount() else {
            return;
        };
        self.total += amount + crate::platform::bonus_fee(amount);
        self.largest = self.largest.max(amount);
        if amount > self.max_bonus {
            self.over_count += 1;
            if self.over.len() < 20 {
                self.over.push(format!("{}: {amount}", row.origin));
            }
        }
    }

    fn finish(self, ctx: &Ctx) -> Result<(), Failure> {
        if self.over_count > 0 {
            ctx.put("over_cap", &self.over);
            return Err(Failure::new(
                FailureKind::OverCap,
                format!(
                    "{} above the cap of {} a bonus: {}{}",
                    plural(self.over_count, "row"),
                    self.max_bonus,
                    self.over.join("; "),
                    if self.over_count as usize > self.over.len() { "; …" } else { "" }
                ),
            )
            .with_fix(format!(
                "If an amount was typed in cents (50 for 0.50), fix the file. If these bonuses are meant, raise the cap: --max-bonus {}.",
                self.largest.to_api_string()
            )));
        }
        if let Some(cap) = self.max_total
            && self.total > cap
        {
            return Err(Failure::new(
                FailureKind::OverCap,
                format!(
                    "the file's bonuses and fees come to {}, above --max-total {cap}",
                    self.total
                ),
            )
            .with_fix("Check the file, or raise --max-total."));
        }
        Ok(())
    }
}
