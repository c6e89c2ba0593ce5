//! An MTurk `payout cancel`: what the batch sent without an answer is verified with the
//! platform first; then the rest of it is closed, so that it is never resumed and a new batch
//! may take its rows.

use super::execute::{conclude, resolve_quals};
use super::new_batch::verify_batch;
use super::{Connect, Place, PlaceChoice, Session};
use crate::engine::QualMap;
use crate::error::{Exit, Failure, FailureKind, Outcome};
use crate::journal::{BatchInfo, CloseKind, Journal, Write};
use crate::output::{Ctx, plural};

/// Cancels `batch` (open, found by the CLI) where it was recorded.
pub async fn cancel(
    batch: BatchInfo,
    mut journal: Journal,
    choice: &PlaceChoice,
    connect: &Connect,
    ctx: &Ctx,
) -> Outcome {
    let place = Place::for_batch(&batch, choice)?;
    let (session, _) = Session::start(&place, connect, &ctx.printer).await?;
    let quals = resolve_quals(&mut journal, &batch, &session, &place, connect)
        .await
        .unwrap_or_else(|_| QualMap::default());
    let left = verify_batch(&mut journal, &batch, &session, quals, connect).await?;
    if left > 0 {
        return Err(Failure::new(
            FailureKind::Unreachable,
            format!(
                "{} of batch {} sent without an answer could not be verified now; the batch was not cancelled",
                plural(left, "operation"),
                batch.name
            ),
        )
        .with_fix("Run `payout cancel` again later."));
    }
    journal.write(&Write::Close {
        batch: batch.id,
        how: CloseKind::Cancelled,
        by: None,
    })?;
    ctx.printer.say(format!(
        "Batch {} cancelled: operations not done are closed and will not be done.",
        batch.name
    ));
    let batch = journal.batch_by_id(batch.id)?.unwrap_or(batch);
    conclude(ctx, &journal, &batch, None).map(|_| Exit::Ok)
}
