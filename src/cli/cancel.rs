//! `payout cancel BATCH`: verify with the platform what the batch sent without an answer, then
//! close the rest of it, so that it is never resumed and a new batch may take its rows.

use clap::Args;

use super::args::{JournalArgs, PaceArgs, TargetArgs};
use super::{Ctx, Outcome};
use crate::error::{Exit, Failure, FailureKind};
use crate::journal::Journal;

#[derive(Args, Debug)]
#[command(
    // Cancelling asks for no confirmation, so --yes has nothing to confirm.
    mut_arg("yes", |a| a.hide(true)),
    after_help = "Example:\n  payout cancel bonuses-3fa2c1   then run the corrected file as a new batch"
)]
pub struct CancelArgs {
    /// The batch to cancel, as `payout status` names it.
    batch: String,
    #[command(flatten)]
    pub journal: JournalArgs,
    #[command(flatten)]
    target: TargetArgs,
    /// Its --json writes one JSON object to stdout at exit.
    #[command(flatten)]
    pub pace: PaceArgs,
}

pub async fn cancel(args: CancelArgs, ctx: &Ctx) -> Outcome {
    let journal = Journal::open(&args.journal.path())?;
    let Some(batch) = journal.batch_by_name(&args.batch)? else {
        return Err(Failure::new(
            FailureKind::NoSuchBatch,
            format!(
                "no batch named {} in {}",
                args.batch,
                args.journal.path().display()
            ),
        ));
    };
    if let Some(closed) = &batch.closed {
        ctx.printer.say(format!(
            "Batch {} is already {}.",
            batch.name,
            closed.how.as_str()
        ));
        return Ok(Exit::Ok);
    }
    if crate::journal::members::is_group_batch(journal.conn(), batch.id)? {
        return super::groups::cancel_groups(&batch, journal, ctx).await;
    }
    if crate::journal::chunks::prolific_status(journal.conn(), batch.id)?.is_some() {
        return super::prolific::cancel_prolific(&batch, journal, ctx).await;
    }
    crate::batch::mturk::cancel(
        batch,
        journal,
        &args.target.choice(),
        &args.target.connect(&args.pace),
        ctx,
    )
    .await
}
