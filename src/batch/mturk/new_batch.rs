//! A new batch: planned against the journal, its overlaps with other batches shown and refused
//! (or superseded), its qualification types looked up — and only then recorded.

use std::collections::HashSet;

use super::execute::missing_qualifications;
use super::run::Source;
use super::{Connect, Place, Session};
use crate::engine::{
    QualMap, Run, Silent, StopSignal, create_missing, look_up_qualifications, verify_open,
};
use crate::error::{Failure, FailureKind};
use crate::journal::{BatchInfo, BatchOptions, CloseKind, Journal, NewBatch, Write};
use crate::op::QualRef;
use crate::output::Ctx;
use crate::output::plural;
use crate::pace::Pacer;
use crate::plan::{OverlapReason, PlanConfig, PlanError, PlanSummary, Planner, plan_source};

/// The choices of `payout run` that shape a new batch.
pub struct NewOptions<'a> {
    pub allow_repeat: bool,
    pub allow_overlap: bool,
    pub supersede: bool,
    pub create_missing: bool,
    pub skip_rehearsal: bool,
    pub connect: &'a Connect,
}

/// A new batch planned and checked, not yet recorded.
pub struct NewPlan {
    pub summary: PlanSummary,
    pub config: PlanConfig,
    /// Qualification names no type of the requester has (created when recorded).
    pub missing: Vec<String>,
    /// The names the file uses that have a type, resolved before planning.
    pub quals: QualMap,
    /// Groups whose state the journal says holds and the platform showed does not.
    pub unheld: HashSet<i64>,
}

/// A planner of `config` against `prior`, with `quals`' names planned as their type IDs.
pub fn planner<'p>(
    config: &PlanConfig,
    prior: &'p mut dyn crate::plan::Prior,
    quals: &QualMap,
    unheld: &HashSet<i64>,
) -> Planner<'p> {
    Planner::new(config.clone(), prior)
        .resolving(quals.iter().map(|(n, id)| (n.clone(), id.clone())))
        .not_holding(unheld.clone())
}

/// What the journal says holds, confirmed with the platform (read-only): the groups whose
/// standing shows otherwise now, to be planned again.
pub async fn confirm_held(
    session: &Session,
    plan: &PlanSummary,
    quals: &QualMap,
    cfg: &crate::engine::EngineConfig,
) -> HashSet<i64> {
    if plan.held.is_empty() {
        return HashSet::new();
    }
    crate::engine::not_holding(session.platform.clone(), &plan.held, quals, cfg).await
}

/// The file's qualification names (`names`) resolved to type IDs, and those missing — and,
/// so that the items other batches recorded by name are found under the ID too, the names
/// the journal's items on this ledger use (read-only; one not found is no one's business here).
pub async fn resolve_names<P: crate::platform::Platform>(
    platform: &P,
    journal: Option<&Journal>,
    ledger: &str,
    config: &PlanConfig,
    names: &[String],
    cfg: &crate::engine::EngineConfig,
) -> Result<(QualMap, Vec<String>), Failure> {
    // A bonus file names no qualification type, and no history of one concerns it.
    if config.kind == crate::journal::BatchKind::Bonus {
        return Ok((QualMap::default(), Vec::new()));
    }
    let (mut quals, missing) = if names.is_empty() {
        (QualMap::default(), Vec::new())
    } else {
        look_up_qualifications(platform, journal, ledger, names, cfg).await?
    };
    if let Some(j) = journal {
        let recorded: Vec<String> = j
            .ledger_qualification_names(ledger)?
            .into_iter()
            .filter(|n| !names.contains(n))
            .collect();
        if !recorded.is_empty() {
            let (found, _) =
                look_up_qualifications(platform, journal, ledger, &recorded, cfg).await?;
            for (n, id) in found.iter() {
                quals.insert(n.clone(), id.clone());
            }
        }
    }
    Ok((quals, missing))
}

/// Refuses a file that changes one qualification group twice, once naming the type and once
/// giving its ID (found once the names are resolved).
pub fn refuse_conflicts(ctx: &Ctx, plan: &PlanSummary, file: &str) -> Result<(), Failure> {
    if plan.conflict_count == 0 {
        return Ok(());
    }
    ctx.put("conflicts", &plan.conflicts);
    let mut text = format!(
        "{}: {} of one worker's qualification, named once by name and once by ID; nothing was sent",
        file,
        plural(plan.conflict_count, "second change")
    );
    for c in &plan.conflicts {
        text.push_str("\n  ");
        text.push_str(c);
    }
    Err(Failure::new(FailureKind::InvalidInput, text)
        .with_fix("A worker gets one change per qualification in a file: keep one of each pair, then run the same command again."))
}

/// Plans `source` against the ledger's history without keeping its items: what a new batch
/// would skip and where it overlaps other batches. With no other batch on the ledger there is
/// nothing to ask, and the first pass's plan (`probe`) is the plan.
fn plan_pass(
    journal: &Journal,
    source: &Source,
    config: &PlanConfig,
    probe: &PlanSummary,
    ledger: &str,
    quals: &QualMap,
    unheld: &HashSet<i64>,
) -> Result<PlanSummary, Failure> {
    let mut prior = journal.prior(ledger)?;
    if !prior.has_history() && quals.is_empty() {
        return Ok(probe.clone());
    }
    let mut planner = planner(config, &mut prior, quals, unheld);
    plan_source(&|sink| source.rescan(sink), &mut planner, &mut |_| Ok(()))
        .map_err(plan_failure)?;
    let plan = planner.finish();
    unchanged(&plan, probe, &source.name())?;
    Ok(plan)
}

/// Refuses a later pass over the file whose rows are not those the first pass validated (a
/// later pass does not look for repeats again: this is what lets it trust the first).
fn unchanged(later: &PlanSummary, first: &PlanSummary, name: &str) -> Result<(), Failure> {
    if later.fingerprint == first.fingerprint {
        return Ok(());
    }
    Err(plan_failure(PlanError::Input(
        crate::input::InputErrors::whole(name, "its content is not what was checked a moment ago"),
    )))
}

pub fn plan_failure(e: PlanError) -> Failure {
    match e {
        PlanError::Prior(p) => crate::journal::JournalError::from(p).into(),
        // The file changed between two reads of it.
        PlanError::Input(i) => Failure::new(
            FailureKind::InvalidInput,
            format!(
                "the file changed while payout read it: {}",
                i.to_string().trim_end()
            ),
        )
        .with_fix("Leave the file alone while payout runs, then run the same command again."),
    }
}

/// Plans a new batch against the journal; refuses (or, with `--supersede`, resolves) overlaps
/// with other batches; looks its qualification types up. Nothing is written.
#[allow(clippy::too_many_arguments)]
pub async fn plan_new(
    opts: &NewOptions<'_>,
    ctx: &Ctx,
    journal: &mut Journal,
    source: &Source,
    config: PlanConfig,
    probe: &PlanSummary,
    names: &[String],
    place: &Place,
    session: &Session,
) -> Result<NewPlan, Failure> {
    refuse_other_endpoint(journal, probe, place)?;
    let ledger = place.ledger();
    // Names are resolved before planning: a type named by name and the same type by ID are
    // one thing to every check below.
    let (quals, missing) = resolve_names(
        session.platform.as_ref(),
        Some(journal),
        &ledger,
        &config,
        names,
        &opts.connect.engine,
    )
    .await?;
    let mut unheld = HashSet::new();
    let mut summary = plan_pass(journal, source, &config, probe, &ledger, &quals, &unheld)?;
    refuse_conflicts(ctx, &summary, &source.name())?;
    if summary.overlap_count > 0 {
        show_overlaps(ctx, &summary);
        let unfinished = summary
            .overlaps
            .iter()
            .any(|o| o.reason == OverlapReason::Unfinished);
        let paid = summary
            .overlaps
            .iter()
            .any(|o| o.reason == OverlapReason::AlreadyPaid);
        if unfinished && opts.supersede && !paid {
            supersede(ctx, journal, &summary, place, session, opts.connect).await?;
            summary = plan_pass(journal, source, &config, probe, &ledger, &quals, &unheld)?;
        }
        if summary.overlap_count > 0 {
            ctx.put("overlaps", &summary.overlaps);
            let mut fix = Vec::new();
            if unfinished {
                fix.push(format!(
                    "Finish the other batch first (`payout resume {}`), or cancel it (`payout cancel {0}`), or add --supersede to cancel it now (what it sent without an answer is verified first).",
                    summary.overlapping_batches[0]
                ));
            }
            if paid {
                fix.push("If these are further bonuses (another round, not a correction), add --allow-overlap.".into());
            }
            return Err(Failure::new(
                FailureKind::Overlap,
                format!(
                    "{} of this file overlap {} ({}); nothing was sent",
                    plural(summary.overlap_count, "row"),
                    plural(summary.overlapping_batches.len() as u64, "other batch"),
                    summary.overlapping_batches.join(", ")
                ),
            )
            .with_fix(fix.join("\n")));
        }
    }
    if !missing.is_empty() && !opts.create_missing {
        return Err(missing_qualifications(&missing));
    }
    // A state skipped on the journal's word may have been changed since on the platform: the
    // file asks for it now, so what does not hold there is planned again.
    unheld = confirm_held(session, &summary, &quals, &opts.connect.engine).await;
    if !unheld.is_empty() {
        summary = plan_pass(journal, source, &config, probe, &ledger, &quals, &unheld)?;
    }
    Ok(NewPlan {
        summary,
        config,
        missing,
        quals,
        unheld,
    })
}

/// Records a planned batch — the file imported a chunk at a time, the batch usable only once
/// its import is complete — and creates its missing qualification types (once each).
#[allow(clippy::too_many_arguments)]
pub async fn record_new(
    opts: &NewOptions<'_>,
    ctx: &Ctx,
    journal: &mut Journal,
    plan: NewPlan,
    place: &Place,
    session: &Session,
    source: &Source,
    name: &str,
) -> Result<BatchInfo, Failure> {
    let batch = journal.insert_batch(&NewBatch {
        fingerprint: plan.summary.fingerprint.clone(),
        content_digest: plan.summary.content_digest.clone(),
        kind: plan.config.kind,
        target: place.target,
        endpoint: place.endpoint.clone(),
        source: name.to_owned(),
        options: BatchOptions {
            allow_repeat: opts.allow_repeat,
            allow_overlap: opts.allow_overlap,
            create_missing: opts.create_missing,
            skip_rehearsal: opts.skip_rehearsal,
        },
    })?;
    if let Err(e) = import_items(journal, &batch, &plan, place, source, name) {
        // Stopped cleanly (a file that changed, a write that failed): the journal is left as it
        // was. Only a process killed outright leaves the batch behind, as an interrupted import.
        let _ = journal.abandon_import(batch.id);
        return Err(e);
    }
    if !plan.missing.is_empty() {
        let created = create_missing(
            session.platform.as_ref(),
            journal,
            &place.ledger(),
            batch.id,
            &plan.missing,
            &opts.connect.engine,
        )
        .await?;
        for name in &plan.missing {
            if let Some(id) = created.id(&QualRef::Name(name.clone())) {
                ctx.printer
                    .say(format!("Created the qualification type {name:?} ({id})."));
            }
        }
    }
    ctx.printer.say(format!("New batch {}.", batch.name));
    say_renotified(ctx, &plan.summary);
    if plan.summary.skipped > 0 {
        ctx.printer.say(format!(
            "{} already done by earlier batches: skipped (--allow-repeat does them again).",
            plural(plan.summary.skipped, "operation")
        ));
    }
    Ok(batch)
}

/// Writes the items of `batch`, a batch just recorded, planning the file again as they are
/// written, and marks its import complete in the same transaction.
fn import_items(
    journal: &mut Journal,
    batch: &BatchInfo,
    plan: &NewPlan,
    place: &Place,
    source: &Source,
    name: &str,
) -> Result<(), Failure> {
    // The plan is made again as the items are written: against a second, read-only view of
    // the journal (what other batches hold does not change meanwhile). The batch's own items,
    // written a chunk at a time, are not history.
    let reader = Journal::open_read_only(journal.path())?;
    let mut prior = reader.prior_excluding(&place.ledger(), batch.id)?;
    let mut planner = planner(&plan.config, &mut prior, &plan.quals, &plan.unheld);
    let rows = plan.summary.totals.operations + plan.summary.skipped;
    let bulk = journal.bulk_import_pays(rows)?;
    let mut import = journal.import(batch.id, bulk)?;
    let mut write_error = None;
    plan_source(&|sink| source.rescan(sink), &mut planner, &mut |item| {
        if write_error.is_none()
            && let Err(e) = import.push(item)
        {
            write_error = Some(e);
        }
        Ok(())
    })
    .map_err(plan_failure)?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    unchanged(&planner.finish(), &plan.summary, name)?;
    import.finish()?;
    Ok(())
}

/// Says how many grants the workers hold already are sent again for the e-mail `--notify`
/// asks (MTurk e-mails only with a grant).
pub fn say_renotified(ctx: &Ctx, plan: &PlanSummary) {
    if plan.restored > 0 {
        ctx.printer.say(format!(
            "{} an earlier batch did but MTurk shows otherwise now: done again.",
            plural(plan.restored, "state")
        ));
    }
    if plan.renotified > 0 {
        ctx.printer.say(format!(
            "{} the workers already hold (granted quietly before) sent again so that MTurk e-mails them (--notify).",
            plural(plan.renotified, "grant")
        ));
    }
}

/// A batch of the same content on the same target that pays through another endpoint, and is
/// not finished: running this one would pay the same rows into another ledger.
fn refuse_other_endpoint(
    journal: &Journal,
    probe: &PlanSummary,
    place: &Place,
) -> Result<(), Failure> {
    for other in journal.open_batches_on_target(place.target)? {
        if other.content_digest.as_deref() == Some(probe.content_digest.as_str())
            && other.ledger != place.ledger()
        {
            let there = match &other.endpoint {
                Some(e) => format!("through {e}"),
                None => format!("through {}'s own endpoint", other.target.banner()),
            };
            return Err(Failure::new(
                FailureKind::TargetMismatch,
                format!(
                    "batch {} of this file on {} is unfinished and works {there}; this run would work elsewhere",
                    other.name,
                    other.target.banner()
                ),
            )
            .with_fix(format!(
                "Finish it where it was recorded (`payout resume {}`), or cancel it (`payout cancel {0}`).",
                other.name
            )));
        }
    }
    Ok(())
}

pub fn show_overlaps(ctx: &Ctx, summary: &PlanSummary) {
    ctx.printer.warn(format!(
        "These rows overlap other batches in the journal ({} in all):",
        summary.overlap_count
    ));
    for o in &summary.overlaps {
        let why = match o.reason {
            OverlapReason::Unfinished => "unfinished",
            OverlapReason::AlreadyPaid => "already paid",
        };
        ctx.printer.warn(format!(
            "  {}: {} — batch {} {}: {} ({})",
            o.origin, o.what, o.other_batch, o.other_origin, o.other_what, why
        ));
    }
    if summary.overlap_count as usize > summary.overlaps.len() {
        ctx.printer.warn(format!(
            "  … and {} more",
            summary.overlap_count as usize - summary.overlaps.len()
        ));
    }
}

/// Cancels the unfinished batches this file overlaps: what they sent without an answer is
/// verified first; a batch that cannot be verified now is not touched.
async fn supersede(
    ctx: &Ctx,
    journal: &mut Journal,
    summary: &PlanSummary,
    place: &Place,
    session: &Session,
    connect: &Connect,
) -> Result<(), Failure> {
    for name in &summary.overlapping_batches {
        let Some(old) = journal.batch_by_name(name)? else {
            continue;
        };
        if old.closed.is_some() {
            continue;
        }
        let quals = super::execute::resolve_quals(journal, &old, session, place, connect)
            .await
            .unwrap_or_else(|_| QualMap::default());
        let left = verify_batch(journal, &old, session, quals, connect).await?;
        if left > 0 {
            return Err(Failure::new(
                FailureKind::Overlap,
                format!(
                    "batch {name} has {} sent without an answer that could not be verified now; it was not superseded",
                    plural(left, "operation")
                ),
            )
            .with_fix("Run the same command again later."));
        }
        journal.write(&Write::Close {
            batch: old.id,
            how: CloseKind::Superseded,
            by: None,
        })?;
        ctx.printer.say(format!(
            "Batch {name} superseded: its operations not done are closed and will not be done by it."
        ));
    }
    Ok(())
}

/// Verifies every unknown operation of `batch` with the platform; returns how many remain
/// unknown. The journal is lent to the engine's writer and given back.
pub async fn verify_batch(
    journal: &mut Journal,
    batch: &BatchInfo,
    session: &Session,
    quals: QualMap,
    connect: &Connect,
) -> Result<u64, Failure> {
    let cfg = connect.engine.clone();
    let left = journal
        .with_writer(|writer| {
            verify_open(Run {
                platform: session.platform.clone(),
                journal: writer,
                batch: batch.clone(),
                quals,
                cfg: cfg.clone(),
                pacer: Pacer::new(cfg.pace),
                reporter: std::sync::Arc::new(Silent),
                stop: std::sync::Arc::new(StopSignal::default()),
            })
        })
        .await?;
    Ok(left)
}
