//! `payout resume [BATCH]`: continue an interrupted batch without its file, where it was
//! recorded (its target, its endpoint); a closed or superseded batch is never resumed.

use clap::Args;

use super::args::{JournalArgs, PaceArgs, TargetArgs};
use super::{Ctx, Outcome, Terminal};
use crate::error::{Exit, Failure, FailureKind};
use crate::journal::Journal;
use crate::signals::Signals;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  payout resume                  the latest unfinished batch\n  payout resume bonuses-3fa2c1   a batch by the name `payout status` shows"
)]
pub struct ResumeArgs {
    /// The batch (as `payout status` names it); the latest unfinished one by default.
    batch: Option<String>,
    #[command(flatten)]
    pub journal: JournalArgs,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    pub pace: PaceArgs,
}

pub async fn resume(args: ResumeArgs, ctx: &Ctx) -> Outcome {
    let signals = Signals::install();
    // An import cut short is kept until it is reported: resuming has nothing of it to do, and
    // saying "nothing to resume" would hide that the last run did not happen.
    let mut journal = Journal::open_keeping_imports(&args.journal.path())?;
    for w in journal.take_warnings() {
        ctx.printer.warn(format!("warning: {w}"));
    }
    if let Some(last) = journal.unfinished_imports()?.last().cloned() {
        if args.batch.is_none() {
            let mut failure = super::status::interrupted_import(&last);
            if let Some(open) = journal.latest_batch(true)? {
                failure.fix = Some(format!(
                    "{}\nBatch {} is unfinished too: `payout resume {1}` continues it.",
                    failure.fix.unwrap_or_default(),
                    open.name
                ));
            }
            return Err(failure);
        }
        for gone in journal.drop_unfinished_imports()? {
            ctx.printer.warn(format!(
                "note: the last run was interrupted while importing {} (batch {}); nothing of it was sent — run that command again",
                gone.source, gone.name
            ));
        }
    }
    let found = match &args.batch {
        Some(name) => journal.batch_by_name(name)?,
        None => journal.latest_batch(true)?,
    };
    let batch = match (found, &args.batch) {
        (Some(b), _) => b,
        (None, Some(name)) => {
            return Err(Failure::new(
                FailureKind::NoSuchBatch,
                format!("no batch named {name} in {}", args.journal.path().display()),
            )
            .with_fix("`payout status` shows the latest batch and its name."));
        }
        (None, None) => {
            ctx.printer
                .say("Nothing to resume: every batch in the journal is finished.");
            return Ok(Exit::Ok);
        }
    };
    if let Some(closed) = &batch.closed {
        return Err(Failure::new(
            FailureKind::TargetMismatch,
            format!(
                "batch {} was {}{}; it is never resumed",
                batch.name,
                closed.how.as_str(),
                closed
                    .by
                    .as_ref()
                    .map(|b| format!(" by batch {b}"))
                    .unwrap_or_default()
            ),
        ));
    }
    if crate::batch::prolific::ledger_place(&batch.ledger).is_some() {
        let endpoint = args.target.endpoint_url.as_ref().map(|e| e.as_str());
        return super::prolific::resume_prolific(
            &batch,
            journal,
            endpoint,
            args.pace.yes,
            signals,
            ctx,
        )
        .await;
    }
    crate::batch::mturk::resume(
        &batch,
        journal,
        &args.target.choice(),
        &args.target.connect(&args.pace),
        args.pace.yes,
        signals,
        ctx,
        &Terminal,
    )
    .await
}
