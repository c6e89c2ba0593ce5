//! `payout run FILE --dry-run`: the plan of what is left (the journal says what was done
//! before), the account checked, and read-only preflight checks of every operation. Nothing is
//! sent; nothing is journaled — except that a production dry run whose checks pass is recorded
//! as the rehearsal production needs.

use std::sync::Arc;

use super::execute::{open_totals, start_session};
use super::new_batch::{self, plan_failure, show_overlaps};
use super::run::{FirstPass, Source};
use super::{Connect, Place};
use crate::engine::{Finding, StopSignal, look_up_qualifications, preflight};
use crate::error::Outcome;
use crate::error::{Exit, Failure};
use crate::journal::{ItemFilter, ItemState, Journal, Write};
use crate::op::{Operation, Origin, QualRef};
use crate::output::Ctx;
use crate::output::{Summary, plan_text, plural};
use crate::pace::Pacer;
use crate::plan::{NoPrior, Totals, plan_source};
use crate::signals::{Signals, first_signal, interrupted};
use crate::target::Target;

/// Findings listed at most; the rest are counted.
const LISTED_FINDINGS: usize = 30;

/// Operations checked at most by one dry run: at MTurk's pace, checking more would take hours.
pub const CHECKED_AT_MOST: usize = 20_000;

#[allow(clippy::too_many_arguments)]
pub async fn dry_run(
    ctx: &Ctx,
    journal_path: &std::path::Path,
    connect: &Connect,
    source: &Source,
    first: &FirstPass,
    place: &Place,
    name: &str,
    signals: &mut Option<Signals>,
    checked_at_most: usize,
) -> Outcome {
    let path = journal_path.to_path_buf();
    let journal = if path.exists() {
        Some(Journal::open_read_only(&path)?)
    } else {
        None
    };
    let probe = &first.probe;
    let mut todo: Vec<(Origin, Operation)> = Vec::new();
    let mut more = 0u64;
    let mut keep = |origin: Origin, op: Operation| {
        if todo.len() < checked_at_most {
            todo.push((origin, op));
        } else {
            more += 1;
        }
    };
    let (session, balance) = start_session(place, connect, &ctx.printer, signals).await?;
    // The file's qualification names, resolved before planning (as a run resolves them).
    let cfg = connect.engine.clone();
    let (mut quals, mut missing) = new_batch::resolve_names(
        session.platform.as_ref(),
        journal.as_ref(),
        &place.ledger(),
        &first.config,
        &first.names,
        &cfg,
    )
    .await?;
    // What is left to do: the journal's open operations of this batch, or the whole plan.
    let existing = match &journal {
        Some(j) => j.batch_to_continue(&probe.fingerprint)?,
        None => None,
    };
    let totals: Totals = match (&journal, existing) {
        (Some(j), Some(batch)) => {
            let done = Summary::load(j, &batch)?;
            ctx.printer.say(format!(
                "Batch {} of this file is in the journal: {} done before ({} paid), {} left.",
                batch.name,
                plural(done.done, "operation"),
                crate::money::Cents(done.paid_cents),
                done.pending
            ));
            let mut after = None;
            loop {
                let page = j.items_page(batch.id, after, 1000, ItemFilter::Open)?;
                let Some(last) = page.last() else { break };
                after = Some(last.seq);
                for i in page {
                    keep(i.origin, i.op);
                }
            }
            open_totals(j, &batch)?
        }
        (Some(j), None) => {
            // Planned once on the journal's word, then again with what the platform shows
            // of the states it says hold (as a run plans them).
            let plan = |unheld: &std::collections::HashSet<i64>,
                        keep: &mut dyn FnMut(Origin, Operation)| {
                let mut prior = j.prior(&place.ledger())?;
                let mut planner = new_batch::planner(&first.config, &mut prior, &quals, unheld);
                // The first pass looked for repeats; this one proves it read the same rows
                // by their fingerprint instead (32 bytes a row less).
                plan_source(&|sink| source.rescan(sink), &mut planner, &mut |item| {
                    if item.state == ItemState::Pending {
                        keep(item.origin, item.op);
                    }
                    Ok(())
                })
                .map_err(plan_failure)?;
                Ok::<_, Failure>(planner.finish())
            };
            let mut s = plan(&Default::default(), &mut keep)?;
            if s.fingerprint != probe.fingerprint {
                return Err(plan_failure(crate::plan::PlanError::Input(
                    crate::input::InputErrors::whole(
                        source.name(),
                        "its content is not what was checked a moment ago",
                    ),
                )));
            }
            let unheld = new_batch::confirm_held(&session, &s, &quals, &cfg).await;
            if !unheld.is_empty() {
                // Only the rows of those groups change (from skipped to pending): a file
                // changes a group once.
                s = plan(&unheld, &mut |origin, op| {
                    if unheld.contains(&op.group().hash64()) {
                        keep(origin, op);
                    }
                })?;
            }
            new_batch::refuse_conflicts(ctx, &s, name)?;
            new_batch::say_renotified(ctx, &s);
            if s.skipped > 0 {
                ctx.printer.say(format!(
                    "{} already done by earlier batches would be skipped.",
                    plural(s.skipped, "operation")
                ));
            }
            if s.overlap_count > 0 {
                show_overlaps(ctx, &s);
                ctx.put("overlaps", &s.overlaps);
            }
            s.totals
        }
        (None, _) => {
            let mut none = NoPrior;
            let mut planner =
                new_batch::planner(&first.config, &mut none, &quals, &Default::default());
            // The first pass validated the file and looked for repeats; this one proves it
            // read the same rows by their fingerprint instead (32 bytes a row less).
            plan_source(&|sink| source.rescan(sink), &mut planner, &mut |item| {
                keep(item.origin, item.op);
                Ok(())
            })
            .map_err(plan_failure)?;
            let s = planner.finish();
            if s.fingerprint != probe.fingerprint {
                return Err(plan_failure(crate::plan::PlanError::Input(
                    crate::input::InputErrors::whole(
                        source.name(),
                        "its content is not what was checked a moment ago",
                    ),
                )));
            }
            new_batch::refuse_conflicts(ctx, &s, name)?;
            probe.totals.clone()
        }
    };
    ctx.printer.say(format!(
        "Plan (dry run):\n{}",
        plan_text(&totals, Some(&balance))
    ));
    ctx.put("plan", plan_json(&totals, &balance));

    // Read-only checks. A batch in the journal may name types the file's names did not
    // resolve (recorded by name): those are looked up too.
    let mut findings = Vec::new();
    let mut names: Vec<String> = todo
        .iter()
        .filter_map(|(_, op)| op.qualification()?.name().map(str::to_owned))
        .filter(|n| quals.id(&QualRef::Name(n.clone())).is_none() && !missing.contains(n))
        .collect();
    names.sort();
    names.dedup();
    if !names.is_empty() {
        let (more_quals, more_missing) = look_up_qualifications(
            session.platform.as_ref(),
            journal.as_ref(),
            &place.ledger(),
            &names,
            &cfg,
        )
        .await?;
        for (n, id) in more_quals.iter() {
            quals.insert(n.clone(), id.clone());
        }
        missing.extend(more_missing);
    }
    let checks = todo
        .iter()
        .filter(|(_, op)| matches!(op, Operation::Bonus { .. }))
        .map(|(_, op)| match op {
            Operation::Bonus { assignment, .. } => assignment.as_str(),
            _ => "",
        })
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        + todo
            .iter()
            .filter(|(_, op)| op.qualification().is_some())
            .count();
    ctx.printer.say(format!(
        "Checking {} with the platform (read-only)…",
        plural(checks as u64, "thing")
    ));
    if more > 0 {
        ctx.printer.say(format!(
            "Only the first {checked_at_most} operations are checked; {more} more are not (at the platform's pace that would take hours)."
        ));
    }
    let bar = ctx.printer.bar.then(|| {
        let b = indicatif::ProgressBar::new(checks as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:24} {pos}/{len} checked {wide_msg}")
                .expect("a valid template"),
        );
        b
    });
    let tick: Arc<dyn Fn() + Send + Sync> = match &bar {
        Some(b) => {
            let b = b.clone();
            Arc::new(move || b.inc(1))
        }
        None => Arc::new(|| {}),
    };
    let stop = Arc::new(StopSignal::default());
    let run = preflight(
        session.platform.clone(),
        &todo,
        &quals,
        &cfg,
        Arc::new(Pacer::new(cfg.pace)),
        stop.clone(),
        tick,
    );
    let found = tokio::select! {
        f = run => f,
        _ = first_signal(signals) => {
            stop.stop(crate::engine::StopReason::User);
            return Err(interrupted());
        }
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for name in &missing {
        findings.push(format!(
            "no qualification type of yours is named {name:?} (--create-missing creates it)"
        ));
    }
    let failing = found.iter().filter(|f| f.fails()).count() + missing.len();
    findings.extend(found.iter().map(Finding::to_string));
    let missing = totals.balance_shortfall(balance.available);
    if let Some(missing) = missing {
        findings.push(format!("the balance is {missing} short of the total"));
    }
    let short = missing.is_some();
    // A check that could not be made proves nothing: the row it was for may be the double
    // payment preflight exists to find. Such a dry run is not a rehearsal.
    let unchecked = found
        .iter()
        .filter(|f| matches!(f, Finding::Unchecked { .. }))
        .count();
    let passed = failing == 0 && !short && unchecked == 0;
    if findings.is_empty() {
        ctx.printer.say("Checks: all passed.");
    } else {
        ctx.printer.warn(format!(
            "Checks found {}:",
            plural(findings.len() as u64, "problem")
        ));
        for f in findings.iter().take(LISTED_FINDINGS) {
            ctx.printer.warn(format!("  {f}"));
        }
        if findings.len() > LISTED_FINDINGS {
            ctx.printer
                .warn(format!("  … and {} more", findings.len() - LISTED_FINDINGS));
        }
    }
    ctx.put(
        "preflight",
        serde_json::json!({ "passed": passed, "findings": found, "problems": findings }),
    );
    if place.target == Target::Production && passed {
        drop(journal);
        let checked = (more > 0).then(|| (todo.len() as u64, todo.len() as u64 + more));
        let mut j = Journal::open(&path)?;
        j.write(&Write::Rehearsal {
            content_digest: probe.content_digest.clone(),
            ledger: place.ledger(),
            source: name.to_owned(),
            checked,
        })?;
        match checked {
            None => ctx.printer.say(
                "Dry run: nothing was sent. The rehearsal is recorded: the same file may now run in production (which still asks for confirmation).",
            ),
            Some((c, of)) => ctx.printer.say(format!(
                "Dry run: nothing was sent. The rehearsal is recorded for the first {c} of {of} operations only: production will say so and run the other {} only with --skip-rehearsal.",
                of - c
            )),
        }
    } else if place.target == Target::Production && unchecked > 0 {
        ctx.printer.warn(format!(
            "Dry run: nothing was sent and nothing was journaled. {} could not be made, so this is not a rehearsal: run it again when the platform answers.",
            plural(unchecked as u64, "check")
        ));
    } else {
        ctx.printer
            .say("Dry run: nothing was sent and nothing was journaled.");
    }
    Ok(Exit::Ok)
}

fn plan_json(t: &Totals, balance: &crate::platform::Balance) -> serde_json::Value {
    serde_json::json!({
        "operations": t.operations,
        "bonuses": t.bonuses,
        "scores": t.scores,
        "revokes": t.revokes,
        "blocks": t.blocks,
        "unblocks": t.unblocks,
        "workers": t.workers,
        "bonus_cents": t.bonus.0,
        "fee_cents": t.fee.0,
        "total_cents": t.grand_total().0,
        "notifications": t.notifications,
        "balance_cents": balance.available.0,
    })
}
