//! An MTurk `payout resume`: a recorded batch continued where it was recorded (its target, its
//! endpoint), production confirmed again with what is left.

use super::confirm::confirm;
use super::execute::{execute_remaining, open_totals, start_session};
use super::{Connect, Place, PlaceChoice, Prompt, need_terminal};
use crate::error::Outcome;
use crate::journal::{BatchInfo, Journal};
use crate::output::Ctx;
use crate::signals::Signals;

/// Continues `batch` (open, found by the CLI): the account checked, production confirmed with
/// what is left, then executed.
#[allow(clippy::too_many_arguments)]
pub async fn resume(
    batch: &BatchInfo,
    journal: Journal,
    choice: &PlaceChoice,
    connect: &Connect,
    yes: bool,
    mut signals: Option<Signals>,
    ctx: &Ctx,
    prompt: &dyn Prompt,
) -> Outcome {
    let production = batch.target == crate::target::Target::Production;
    if production {
        need_terminal(prompt, yes)?;
    }
    let place = Place::for_batch(batch, choice)?;
    ctx.printer.say(format!(
        "payout · {} · resuming {} ({})",
        place.banner(&ctx.printer),
        batch.name,
        batch.source
    ));
    let (session, balance) = start_session(&place, connect, &ctx.printer, &mut signals).await?;
    // Counted once: the confirmation shows the totals the run then works from.
    let remaining = open_totals(&journal, batch)?;
    if production {
        let how = batch
            .content_digest
            .as_deref()
            .map(|d| journal.rehearsal(d))
            .transpose()?
            .flatten();
        confirm(ctx, prompt, &remaining, &balance, how.as_deref(), yes)?;
    }
    ctx.put("batch", &batch.name);
    execute_remaining(
        ctx,
        journal,
        batch.clone(),
        session,
        &place,
        connect,
        balance,
        signals,
        remaining,
    )
    .await
}
