//! The part of an MTurk `run` and `resume` that does the work: what is left, the balance it needs,
//! qualification types, Ctrl-C, progress, the engine, and the summary that decides the exit.

use std::sync::Arc;

use super::{Connect, Place, Session, fix_for};
use crate::engine::{
    self, LookupError, QualMap, StopReason, StopSignal, create_missing, look_up_qualifications,
};
use crate::error::Outcome;
use crate::error::{Exit, Failure, FailureKind};
use crate::journal::{BatchInfo, Journal, JournalError};
use crate::output::Ctx;
use crate::output::{Printer, Progress, Summary, plan_text, plural};
use crate::pace::Pacer;
use crate::plan::Totals;
use crate::platform::{Balance, Systemic};
use crate::signals::{Signals, first_signal, interrupted};

impl From<LookupError> for Failure {
    fn from(e: LookupError) -> Failure {
        match e {
            LookupError::Journal(j) => j.into(),
            LookupError::Platform(p) => Failure::new(FailureKind::Account, crate::error::chain(&p)),
            e @ LookupError::LookAlike { .. } => Failure::new(FailureKind::MissingQualification, e.to_string())
                .with_fix("payout reads names trimmed and will not create a look-alike: rename the type on MTurk without the spaces, or name it by its ID in the file."),
        }
    }
}

/// What is left of a batch: the open operations' totals, in one pass over them
/// (`Journal::open_summary`). On a batch of a million rows that is a second or so: a caller
/// that needs them twice (a confirmation, then the run) computes them once and hands them on.
pub fn open_totals(journal: &Journal, batch: &BatchInfo) -> Result<Totals, JournalError> {
    let mut t = Totals::default();
    let (counts, workers) = journal.open_summary(batch.id)?;
    for c in counts {
        t.add(c.kind, c.count, c.amount, c.fee, c.notifications);
    }
    t.workers = workers;
    Ok(t)
}

/// The batch's qualification names resolved to type IDs: what the journal recorded on this
/// ledger, then the platform; created if the batch was recorded with `--create-missing`.
pub async fn resolve_quals(
    journal: &mut Journal,
    batch: &BatchInfo,
    session: &Session,
    place: &Place,
    connect: &Connect,
) -> Result<QualMap, Failure> {
    // Bonus batches name no qualification type: no need to read them for names.
    if batch.kind == crate::journal::BatchKind::Bonus {
        return Ok(QualMap::default());
    }
    let names = journal.qualification_names(batch.id)?;
    if names.is_empty() {
        return Ok(QualMap::default());
    }
    let cfg = connect.engine.clone();
    let (mut quals, missing) = look_up_qualifications(
        session.platform.as_ref(),
        Some(journal),
        &place.ledger(),
        &names,
        &cfg,
    )
    .await?;
    if !missing.is_empty() {
        if !batch.options.create_missing {
            return Err(missing_qualifications(&missing));
        }
        let created = create_missing(
            session.platform.as_ref(),
            journal,
            &place.ledger(),
            batch.id,
            &missing,
            &cfg,
        )
        .await?;
        for name in &missing {
            if let Some(id) = created.id(&crate::op::QualRef::Name(name.clone())) {
                quals.insert(name.clone(), id);
            }
        }
    }
    Ok(quals)
}

pub fn missing_qualifications(missing: &[String]) -> Failure {
    Failure::new(
        FailureKind::MissingQualification,
        format!(
            "no qualification type of yours is named {}",
            missing
                .iter()
                .map(|m| format!("{m:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .with_fix("Check the names (they must match exactly), or add --create-missing to create them (once each, recorded in the journal).")
}

/// Checks the balance against what is left, runs the engine, and summarises.
#[allow(clippy::too_many_arguments)]
pub async fn execute_batch(
    ctx: &Ctx,
    journal: Journal,
    batch: BatchInfo,
    session: Session,
    place: &Place,
    connect: &Connect,
    balance: Balance,
    signals: Option<Signals>,
) -> Outcome {
    let remaining = open_totals(&journal, &batch)?;
    execute_remaining(
        ctx, journal, batch, session, place, connect, balance, signals, remaining,
    )
    .await
}

/// [`execute_batch`] with what is left already counted (`open_totals` of this journal, whose
/// lock has been held since): a production resume counts once for its confirmation and once
/// is enough.
#[allow(clippy::too_many_arguments)]
pub async fn execute_remaining(
    ctx: &Ctx,
    mut journal: Journal,
    batch: BatchInfo,
    session: Session,
    place: &Place,
    connect: &Connect,
    balance: Balance,
    signals: Option<Signals>,
    remaining: Totals,
) -> Outcome {
    if remaining.operations == 0 {
        let what = match batch.kind {
            crate::journal::BatchKind::Bonus => "pay",
            crate::journal::BatchKind::Qualification => "do",
        };
        ctx.printer
            .say(format!("Batch {} has nothing left to {what}.", batch.name));
        return conclude(ctx, &journal, &batch, None);
    }
    let quals = resolve_quals(&mut journal, &batch, &session, place, connect).await?;
    ctx.printer.say(format!(
        "To do now:\n{}",
        plan_text(&remaining, Some(&balance))
    ));
    if let Some(missing) = remaining.balance_shortfall(balance.available) {
        ctx.printer.warn(format!(
            "error: the balance ({}) cannot cover the total with fees ({}): {} is missing. Nothing was sent.",
            balance.available,
            remaining.grand_total(),
            missing
        ));
        ctx.printer
            .warn(fix_for(Systemic::InsufficientFunds, place.target));
        // The batch has open operations, so its summary ends as incomplete.
        return conclude(ctx, &journal, &batch, None);
    }

    let stop = Arc::new(StopSignal::default());
    let watcher = signals.map(|s| tokio::spawn(watch_signals(s, stop.clone(), ctx.printer)));
    let cfg = connect.engine.clone();
    // A later run on the same account starts near the limit an earlier one measured.
    let pacer = match journal.last_limit(&place.ledger())? {
        Some(limit) if !cfg.pace.pinned => {
            ctx.printer.say(format!(
                "Pace: starting near the limit the last run measured ({limit:.1} requests/s)."
            ));
            Pacer::resume_from(limit, cfg.pace.max)
        }
        _ => Pacer::new(cfg.pace),
    };
    let progress = Arc::new(Progress::new(
        ctx.printer,
        remaining.operations,
        pacer.rate(),
    ));
    let writer = Arc::new(journal.into_writer());
    let result = engine::execute(engine::Run {
        platform: session.platform.clone(),
        journal: writer.clone(),
        batch: batch.clone(),
        quals,
        cfg: cfg.clone(),
        pacer,
        reporter: progress.clone(),
        stop: stop.clone(),
    })
    .await;
    if let Some(w) = watcher {
        w.abort();
    }
    progress.finish();
    let journal = match Arc::try_unwrap(writer) {
        Ok(w) => w.finish(),
        Err(_) => unreachable!("every task holding the writer has ended"),
    };
    let end = result?;
    journal.check_file()?;
    conclude(ctx, &journal, &batch, end.stop)
}

/// First Ctrl-C (or SIGTERM): stop dispatching, let calls under way finish. Second: quit now.
async fn watch_signals(
    mut signals: Signals,
    stop: Arc<StopSignal>,
    printer: crate::output::Printer,
) {
    signals.next().await;
    printer.warn("Stopping: finishing the calls under way (press Ctrl-C again to quit at once; the batch resumes either way).");
    stop.stop(StopReason::User);
    signals.next().await;
    printer.warn(
        "Quitting now; operations under way will be verified with the platform on the next run.",
    );
    std::process::exit(Exit::Incomplete.code().into());
}

/// Prints (and with `--json` records) the batch's summary; decides the exit status.
pub fn conclude(
    ctx: &Ctx,
    journal: &Journal,
    batch: &BatchInfo,
    stop: Option<StopReason>,
) -> Outcome {
    let summary = Summary::load(journal, batch)?;
    let exit = if summary.pending > 0 {
        Exit::Incomplete
    } else if summary.failed > 0 {
        Exit::SomeFailed
    } else {
        Exit::Ok
    };
    ctx.printer.warn(format!(
        "Batch {} on {}:\n{}",
        batch.name,
        ctx.printer.target(batch.target),
        summary.text()
    ));
    match &stop {
        Some(StopReason::Systemic(kind, message)) => {
            ctx.printer.warn(format!("\nStopped: {message}"));
            ctx.printer.warn(fix_for(*kind, batch.target));
        }
        Some(StopReason::User) => ctx.printer.warn("\nStopped on request."),
        Some(StopReason::Journal(m)) => ctx.printer.warn(format!("\nStopped: {m}")),
        None => {}
    }
    if exit == Exit::Incomplete {
        ctx.printer.warn(format!(
            "\n{} still open. Run the same command again, or `payout resume {}`, to finish; nothing will be done twice.",
            plural(summary.pending, "operation"),
            batch.name
        ));
    }
    ctx.put("summary", &summary);
    ctx.put(
        "stopped",
        stop.as_ref().map(|s| match s {
            StopReason::User => "user".to_owned(),
            StopReason::Systemic(_, m) | StopReason::Journal(m) => m.clone(),
        }),
    );
    Ok(exit)
}

/// Connects and checks the account (the library's [`Session::start`]); Ctrl-C meanwhile ends
/// the command as interrupted, nothing recorded or sent. What `run`, `resume` and a dry run do
/// first.
pub async fn start_session(
    place: &Place,
    connect: &Connect,
    printer: &Printer,
    signals: &mut Option<Signals>,
) -> Result<(Session, Balance), Failure> {
    tokio::select! {
        r = Session::start(place, connect, printer) => r,
        _ = first_signal(signals) => Err(interrupted()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AssignmentId, WorkerId};
    use crate::input::Row;
    use crate::journal::tests::{config, record};
    use crate::journal::{ItemState, Write};
    use crate::money::Cents;
    use crate::op::{Operation, Origin};
    use crate::target::Target;

    /// A batch of `n` bonuses, row `i` to worker `i % workers`, recorded.
    fn batch(j: &mut Journal, n: u64, workers: u64) -> BatchInfo {
        let rows: Vec<Row> = (0..n)
            .map(|i| Row {
                origin: Origin::line(i + 2),
                op: Operation::Bonus {
                    worker: WorkerId::parse(&format!("A{}", i % workers)).unwrap(),
                    assignment: AssignmentId::parse(&format!("X{i}")).unwrap(),
                    amount: Cents(100 + i),
                    reason: "thanks".into(),
                },
            })
            .collect();
        record(j, rows, config(Target::Emulator), "a.csv").0
    }

    fn finish(j: &mut Journal, b: &BatchInfo, seqs: impl IntoIterator<Item = u32>) {
        for seq in seqs {
            j.write(&Write::Resolve {
                batch: b.id,
                seq,
                state: ItemState::Done,
                note: "t".into(),
            })
            .unwrap();
        }
    }

    /// What payout computed before: the SQL aggregates, workers by `COUNT(DISTINCT)`.
    fn sql_totals(j: &Journal, b: &BatchInfo) -> Totals {
        let mut sql = Totals::default();
        for c in j.open_kind_state_counts(b.id).unwrap() {
            sql.add(c.kind, c.count, c.amount, c.fee, c.notifications);
        }
        sql.workers = j.open_workers(b.id).unwrap();
        sql
    }

    /// The open totals, counted in one pass, are what SQL's aggregates over the open items
    /// say: counts, money and fees, and the distinct workers — one with two open items counted
    /// once, one whose items are all finished not at all.
    #[test]
    fn open_totals_count_the_open_items_and_their_distinct_workers() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let b = batch(&mut j, 6, 3);
        // Worker A0's two bonuses (seq 0 and 3) are finished.
        finish(&mut j, &b, [0, 3]);
        let t = open_totals(&j, &b).unwrap();
        assert_eq!((t.operations, t.bonuses, t.workers), (4, 4, 2));
        assert_eq!(t.bonus, Cents(101 + 102 + 104 + 105));
        // MTurk's 20 %, rounded half-up: 20 + 20 + 21 + 21.
        assert_eq!(t.fee, Cents(82));
        assert_eq!(t, sql_totals(&j, &b));
    }

    /// More open items than the pass reads through the index: the rest, read as a range of
    /// the table, are counted once each, finished ones on either side of the switch left out.
    #[test]
    fn open_totals_of_a_large_batch_agree_with_the_aggregates() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let through = crate::journal::query::OPEN_THROUGH_INDEX as u32;
        let n = u64::from(through) + 500;
        let b = batch(&mut j, n, 1000);
        finish(
            &mut j,
            &b,
            [0, 7, through - 1, through, through + 1, n as u32 - 1],
        );
        let t = open_totals(&j, &b).unwrap();
        assert_eq!(t.operations, n - 6);
        assert_eq!(t.workers, 1000);
        assert_eq!(t, sql_totals(&j, &b));
    }
}
