//! `payout run FILE`: validate the whole file, plan it, check the account, record the batch
//! (or find it again), then do it. Running the same command again resumes it.

use std::path::PathBuf;

use clap::Args;

use super::args::{JournalArgs, PaceArgs, TargetArgs};
use super::execute::{
    Signals, execute_batch, first_signal, interrupted, missing_qualifications, open_totals,
};
use super::session::{Place, Session};
use super::{Ctx, Outcome};
use crate::engine::{
    QualMap, Silent, StopSignal, create_missing, look_up_qualifications, pace::Pacer, verify_open,
};
use crate::error::{Exit, Failure, FailureKind};
use crate::input::{FileKind, InputOptions, Row, scan};
use crate::journal::{BatchInfo, BatchKind, BatchOptions, CloseKind, Journal, NewBatch, Write};
use crate::op::QualRef;
use crate::output::{Summary, plan_text, plural};
use crate::plan::{
    NoPrior, OverlapReason, PlanConfig, PlanSummary, PlannedItem, Totals, plan_rows,
};

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  payout run bonuses.csv --dry-run       check the file, show the plan and fees\n  payout run bonuses.csv                 pay in the sandbox\n  payout run bonuses.csv --production --yes\n  payout run workers.csv --notify        qualification changes, e-mailing workers on grants"
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
    kind: Option<FileKind>,
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
    /// Validate, show the plan and check the account, then stop: nothing is sent or journaled.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(args: RunArgs, ctx: &Ctx) -> Outcome {
    let mut signals = Signals::install();
    let rows = read_input(&args, ctx)?;
    let kind = if rows.iter().all(|r| r.op.kind() == crate::op::Kind::Bonus) {
        BatchKind::Bonus
    } else {
        BatchKind::Qualification
    };
    // Production needs confirmation before anything else is looked at.
    if args.target.production && !args.pace.yes && !args.dry_run {
        return Err(Failure::new(
            FailureKind::Confirmation,
            "--production works with real money and real workers; add --yes to confirm",
        )
        .with_fix("Rehearse first: run the same command with --sandbox (or --dry-run)."));
    }
    let place = Place::for_new(&args.target)?;
    let config = PlanConfig {
        kind,
        target: place.target,
        endpoint: place.endpoint.clone(),
        allow_repeat: args.allow_repeat,
        allow_overlap: args.allow_overlap,
        allow_duplicates: args.allow_duplicates,
    };
    // The batch's identity needs no journal: the same file run the same way is the same batch.
    let (_, probe) = plan_rows(rows.iter().cloned(), config.clone(), &mut NoPrior)?;
    let source = args.file.display().to_string();
    ctx.printer.say(format!(
        "payout · {} · {} · {}",
        place.banner(&ctx.printer),
        source,
        plural(rows.len() as u64, "operation")
    ));
    if args.dry_run {
        return dry_run(&args, ctx, rows, config, &probe, &place, &mut signals).await;
    }
    let path = args.journal.path();
    let mut journal = Journal::open(&path)?;
    for w in journal.take_warnings() {
        ctx.printer.warn(format!("warning: {w}"));
    }
    let existing = journal.batch_by_fingerprint(&probe.fingerprint)?;
    let startup = async {
        let session = Session::connect(&place, &args.target, &args.pace).await?;
        let balance = session
            .check_account(&place, &args.pace, &ctx.printer)
            .await?;
        Ok::<_, Failure>((session, balance))
    };
    let (session, balance) = tokio::select! {
        r = startup => r?,
        _ = first_signal(&mut signals) => return Err(interrupted()),
    };
    let batch = match existing {
        Some(b) => {
            ctx.printer.say(format!(
                "Continuing batch {} (same file, same target).",
                b.name
            ));
            b
        }
        None => {
            record_batch(
                &args,
                ctx,
                &mut journal,
                rows,
                config,
                &probe,
                &place,
                &session,
                &source,
            )
            .await?
        }
    };
    ctx.put("batch", &batch.name);
    execute_batch(
        ctx, journal, batch, session, &place, &args.pace, balance, signals,
    )
    .await
}

/// Reads and validates the whole file; with any problem, nothing else happens.
fn read_input(args: &RunArgs, ctx: &Ctx) -> Result<Vec<Row>, Failure> {
    let opts = InputOptions {
        amount_column: args.amount_column.clone(),
        default_reason: args.reason.clone(),
        allow_duplicates: args.allow_duplicates,
        kind: args.kind,
        qualification: args.qualification.clone(),
        notify: args.notify,
        block_reason: args.block_reason.clone(),
    };
    let mut rows = Vec::new();
    match scan(&args.file, &opts, &mut |row| rows.push(row)) {
        Ok(_) => Ok(rows),
        Err(e) => {
            ctx.put("file", &e.file);
            ctx.put("problems", &e.problems);
            ctx.put("problems_total", e.total);
            Err(
                Failure::new(FailureKind::InvalidInput, e.to_string().trim_end())
                    .with_fix("Fix these lines and run the same command again."),
            )
        }
    }
}

/// Plans a new batch against the journal, refuses (or resolves) overlaps, checks its
/// qualification types, and records it.
#[allow(clippy::too_many_arguments)]
async fn record_batch(
    args: &RunArgs,
    ctx: &Ctx,
    journal: &mut Journal,
    rows: Vec<Row>,
    config: PlanConfig,
    probe: &PlanSummary,
    place: &Place,
    session: &Session,
    source: &str,
) -> Result<BatchInfo, Failure> {
    refuse_other_endpoint(journal, probe, place)?;
    let ledger = place.ledger();
    let (mut items, mut summary) = plan_rows(
        rows.iter().cloned(),
        config.clone(),
        &mut journal.prior(&ledger)?,
    )?;
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
        if unfinished && args.supersede && !paid {
            supersede(ctx, journal, &summary, place, session, args).await?;
            (items, summary) = plan_rows(rows, config.clone(), &mut journal.prior(&ledger)?)?;
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
    let names = qualification_names(&items);
    let (mut quals, missing) = look_up_qualifications(
        session.platform.as_ref(),
        Some(journal),
        &ledger,
        &names,
        &args.pace.engine(),
    )
    .await?;
    if !missing.is_empty() && !args.create_missing {
        return Err(missing_qualifications(&missing));
    }
    let batch = journal.insert_batch(&NewBatch {
        fingerprint: probe.fingerprint.clone(),
        content_digest: probe.content_digest.clone(),
        kind: config.kind,
        target: place.target,
        endpoint: place.endpoint.clone(),
        source: source.to_owned(),
        options: BatchOptions {
            allow_repeat: args.allow_repeat,
            allow_overlap: args.allow_overlap,
            create_missing: args.create_missing,
            skip_rehearsal: false,
        },
    })?;
    journal.insert_items(batch.id, &items)?;
    if !missing.is_empty() {
        let created = create_missing(
            session.platform.as_ref(),
            journal,
            &ledger,
            batch.id,
            &missing,
            &args.pace.engine(),
        )
        .await?;
        for name in &missing {
            if let Some(id) = created.id(&QualRef::Name(name.clone())) {
                ctx.printer
                    .say(format!("Created the qualification type {name:?} ({id})."));
                quals.insert(name.clone(), id);
            }
        }
    }
    ctx.printer.say(format!("New batch {}.", batch.name));
    if summary.skipped > 0 {
        ctx.printer.say(format!(
            "{} already done by earlier batches: skipped (--allow-repeat does them again).",
            plural(summary.skipped, "operation")
        ));
    }
    Ok(batch)
}

fn qualification_names(items: &[PlannedItem]) -> Vec<String> {
    let mut names: Vec<String> = items
        .iter()
        .filter_map(|i| i.op.qualification()?.name().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    names
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

fn show_overlaps(ctx: &Ctx, summary: &PlanSummary) {
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
    args: &RunArgs,
) -> Result<(), Failure> {
    for name in &summary.overlapping_batches {
        let Some(old) = journal.batch_by_name(name)? else {
            continue;
        };
        if old.closed.is_some() {
            continue;
        }
        let quals = super::execute::resolve_quals(journal, &old, session, place, &args.pace)
            .await
            .unwrap_or_else(|_| QualMap::default());
        let left = verify_batch(journal, &old, session, quals, &args.pace).await?;
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
    pace: &PaceArgs,
) -> Result<u64, Failure> {
    let cfg = pace.engine();
    let left = journal
        .with_writer(|writer| {
            verify_open(
                session.platform.clone(),
                writer,
                batch.clone(),
                quals,
                cfg.clone(),
                Pacer::new(cfg.start_rate, cfg.max_rate),
                std::sync::Arc::new(Silent),
                std::sync::Arc::new(StopSignal::default()),
            )
        })
        .await?;
    Ok(left)
}

/// `--dry-run`: the plan of what is left, checked against the account, with nothing sent or
/// journaled.
async fn dry_run(
    args: &RunArgs,
    ctx: &Ctx,
    rows: Vec<Row>,
    config: PlanConfig,
    probe: &PlanSummary,
    place: &Place,
    signals: &mut Option<Signals>,
) -> Outcome {
    let path = args.journal.path();
    let journal = if path.exists() {
        Some(Journal::open_read_only(&path)?)
    } else {
        None
    };
    let (totals, summary) = match &journal {
        Some(j) => match j.batch_by_fingerprint(&probe.fingerprint)? {
            Some(batch) => {
                let done = Summary::load(j, &batch)?;
                ctx.printer.say(format!(
                    "Batch {} of this file is in the journal: {} done before ({} paid), {} left.",
                    batch.name,
                    plural(done.done, "operation"),
                    crate::money::Cents(done.paid_cents),
                    done.pending
                ));
                (open_totals(j, &batch)?, None)
            }
            None => {
                let (_, s) = plan_rows(rows, config, &mut j.prior(&place.ledger())?)?;
                if s.skipped > 0 {
                    ctx.printer.say(format!(
                        "{} already done by earlier batches would be skipped.",
                        plural(s.skipped, "operation")
                    ));
                }
                if s.overlap_count > 0 {
                    show_overlaps(ctx, &s);
                }
                (s.totals.clone(), Some(s))
            }
        },
        None => (probe.totals.clone(), None),
    };
    let startup = async {
        let session = Session::connect(place, &args.target, &args.pace).await?;
        session.check_account(place, &args.pace, &ctx.printer).await
    };
    let balance = tokio::select! {
        r = startup => r?,
        _ = first_signal(signals) => return Err(interrupted()),
    };
    ctx.printer.say(format!(
        "Plan (dry run):\n{}",
        plan_text(&totals, Some(&balance))
    ));
    ctx.put("plan", plan_json(&totals, &balance));
    if let Some(s) = &summary {
        ctx.put("overlaps", &s.overlaps);
    }
    if totals.bonuses > 0 && balance.available < totals.grand_total() {
        ctx.printer.say(format!(
            "The balance is {} short of the total.",
            totals.grand_total() - balance.available
        ));
    }
    ctx.printer
        .say("Dry run: nothing was sent and nothing was journaled.");
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
