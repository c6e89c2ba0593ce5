//! `payout balance`: the account's available balance, read-only — the one number a researcher
//! checks before paying (and `--json` for scripts).

use clap::Args;

use super::args::TargetArgs;
use super::doctor::check_pace;
use super::{Ctx, Outcome};
use crate::batch::mturk::{Place, Session};
use crate::error::{Exit, Failure, FailureKind};
use crate::output::{OutputError, write_stdout};

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  payout balance                 the sandbox's (always $10,000.00: proves the account is linked)\n  payout balance --production    what production bonuses can draw on\n  payout balance --production --json | jq .balance_cents"
)]
pub struct BalanceArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Write one JSON object to stdout: balance_cents, on_hold_cents, target.
    #[arg(long)]
    pub json: bool,
}

pub async fn balance(args: BalanceArgs, ctx: &Ctx) -> Outcome {
    let place = Place::for_new(&args.target.choice())?;
    let pace = check_pace();
    ctx.printer
        .say(format!("payout · {} · balance", place.banner(&ctx.printer)));
    let (_session, balance) =
        Session::start(&place, &args.target.connect(&pace), &ctx.printer).await?;
    ctx.put("target", place.target.as_str());
    ctx.put("balance_cents", balance.available.0);
    ctx.put("on_hold_cents", balance.on_hold.map(|c| c.0));
    if let Some(hold) = balance.on_hold.filter(|h| h.0 > 0) {
        ctx.printer.say(format!("{hold} more is on hold."));
    }
    if ctx.json() {
        return Ok(Exit::Ok);
    }
    match write_stdout(&format!("{}\n", balance.available)) {
        Ok(()) | Err(OutputError::Closed) => Ok(Exit::Ok),
        Err(OutputError::Io(e)) => Err(Failure::new(
            FailureKind::Output,
            format!("failed to write to standard output: {e}"),
        )),
    }
}
