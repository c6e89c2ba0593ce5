//! An MTurk `payout run FILE`: validate the whole file, plan it, check the account, pass
//! production's gate, record the batch (or find it again), then do it. Running the same command
//! again resumes it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::confirm::{confirm, rehearsal_gate};
use super::execute::{execute_batch, open_totals, start_session};
use super::new_batch::{NewOptions, plan_new, record_new};
use super::{Connect, Place, PlaceChoice, Prompt, dry_run, need_terminal};
use crate::error::{Failure, FailureKind};
use crate::input::{Input, InputErrors, InputOptions, Row, scan_input, stop_requested};
use crate::journal::{BatchKind, Journal};
use crate::money::Cents;
use crate::op::QualRef;
use crate::output::{Ctx, plural};
use crate::plan::{NoPrior, PlanConfig, PlanSummary, Planner};
use crate::signals::{Signals, interrupted, watch_sync};
use crate::target::Target;

/// Everything an MTurk run needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub file: PathBuf,
    pub journal: PathBuf,
    pub place: PlaceChoice,
    pub connect: Connect,
    /// `--yes`: production is confirmed without a terminal.
    pub yes: bool,
    pub dry_run: bool,
    pub skip_rehearsal: bool,
    pub input: InputOptions,
    pub allow_repeat: bool,
    pub allow_overlap: bool,
    pub supersede: bool,
    pub create_missing: bool,
    pub max_bonus: Cents,
    pub max_total: Option<Cents>,
    /// Operations a dry run checks at most.
    pub checked_at_most: usize,
    /// No `--platform`: a file MTurk's reading refuses whose header is Prolific's is one.
    pub platform_from_header: bool,
}

/// How an MTurk run ended: an exit status, or the finding that the file is Prolific's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    Ended(crate::error::Exit),
    /// MTurk's reading refused the file and its header is a Prolific file's (and no
    /// `--platform` was given): nothing was done; it is to run as a Prolific batch.
    ProlificFile,
}

/// The input file, read again by each pass that needs it: never held whole in memory.
pub struct Source {
    input: Input,
    opts: InputOptions,
}

impl Source {
    /// The file of `s`; a pipe or FIFO is read once now, into a private spool beside the
    /// journal (see [`Input`]).
    fn new(s: &RunSettings) -> Result<Source, Failure> {
        let input = Input::open(&s.file, s.journal.parent()).map_err(|e| {
            if stop_requested() {
                return interrupted();
            }
            Failure::new(
                FailureKind::InvalidInput,
                format!("failed to read {}: {e}", s.file.display()),
            )
            .with_fix("Give a file payout can read to its end (a pipe is read once, into a private copy).")
        })?;
        Ok(Source {
            input,
            opts: s.input.clone(),
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

/// Runs an MTurk batch file: read and checked, planned, gated, recorded (or found), done.
pub async fn run(s: &RunSettings, ctx: &Ctx, prompt: &dyn Prompt) -> Result<Ran, Failure> {
    let mut signals = Signals::install();
    let production = s.place.target == Some(Target::Production);
    if production && !s.dry_run {
        need_terminal(prompt, s.yes)?;
    }
    let place = Place::for_new(&s.place)?;
    // Reading and validating are synchronous: signals are watched from another thread.
    let watch = watch_sync(&mut signals, ctx.printer);
    let read = Source::new(s).and_then(|source| {
        let first = first_pass(s, ctx, &source, &place)?;
        Ok((source, first))
    });
    if watch.end(&mut signals).await {
        return Err(interrupted());
    }
    let (source, first) = match read {
        // The file is not opened an extra time for MTurk's files: only once refused.
        Err(f)
            if f.kind == FailureKind::InvalidInput
                && s.platform_from_header
                && crate::input::header_says_prolific(&s.file) =>
        {
            return Ok(Ran::ProlificFile);
        }
        r => r?,
    };
    let name = s.file.display().to_string();
    ctx.printer.say(format!(
        "payout · {} · {} · {}",
        place.banner(&ctx.printer),
        name,
        plural(first.operations, "operation")
    ));
    if s.dry_run {
        return dry_run::dry_run(
            ctx,
            &s.journal,
            &s.connect,
            &source,
            &first,
            &place,
            &name,
            &mut signals,
            s.checked_at_most,
        )
        .await
        .map(Ran::Ended);
    }
    let mut journal = Journal::open(&s.journal)?;
    for w in journal.take_warnings() {
        ctx.printer.warn(format!("warning: {w}"));
    }
    let existing = journal.batch_to_continue(&first.probe.fingerprint)?;
    let (rehearsal, unrehearsed) = match (&existing, production) {
        (None, true) => rehearsal_gate(ctx, &journal, &first.probe, &name, s.skip_rehearsal)?,
        _ => (None, false),
    };
    let (session, balance) = start_session(&place, &s.connect, &ctx.printer, &mut signals).await?;
    let opts = NewOptions {
        allow_repeat: s.allow_repeat,
        allow_overlap: s.allow_overlap,
        supersede: s.supersede,
        create_missing: s.create_missing,
        skip_rehearsal: unrehearsed,
        connect: &s.connect,
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
                    prompt,
                    &open_totals(&journal, &b)?,
                    &balance,
                    how.as_deref(),
                    s.yes,
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
                    prompt,
                    &plan.summary.totals,
                    &balance,
                    rehearsal.as_deref(),
                    s.yes,
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
        ctx, journal, batch, session, &place, &s.connect, balance, signals,
    )
    .await
    .map(Ran::Ended)
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
    args: &RunSettings,
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
        allow_duplicates: args.input.allow_duplicates,
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
