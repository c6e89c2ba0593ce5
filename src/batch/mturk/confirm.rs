//! Production's gate: the same content rehearsed first (a finished sandbox run, or a production
//! dry run whose read-only checks passed), then the totals shown and confirmed by the user.

use super::super::{Prompt, need_terminal};
use crate::error::{Failure, FailureKind};
use crate::journal::{Journal, Rehearsal};
use crate::output::Ctx;
use crate::output::{plan_text, plural};
use crate::plan::{PlanSummary, Totals};
use crate::platform::Balance;

/// Refuses a new production batch whose content was never rehearsed (no call is made), unless
/// `skip`. Returns how it was rehearsed, and whether anything goes unrehearsed (recorded with
/// the batch): all of it without a rehearsal, or the operations a large file's dry run did not
/// check.
pub fn rehearsal_gate(
    ctx: &Ctx,
    journal: &Journal,
    probe: &PlanSummary,
    file: &str,
    skip: bool,
) -> Result<(Option<String>, bool), Failure> {
    match journal.rehearsal_record(&probe.content_digest)? {
        Some(Rehearsal {
            how,
            checked: Some((checked, of)),
        }) if checked < of => {
            let rest = of - checked;
            if !skip {
                return Err(Failure::new(
                    FailureKind::Confirmation,
                    format!(
                        "this file was rehearsed only in part: {how}; the other {} were never checked",
                        plural(rest, "operation")
                    ),
                )
                .with_fix(format!(
                    "Add --skip-rehearsal to run the other {rest} without a rehearsal (it is recorded), or rehearse the whole file in the sandbox first:\n  payout run {file} --sandbox"
                )));
            }
            ctx.printer.warn(format!(
                "warning: rehearsed only in part ({how}); the other {} go without a rehearsal (--skip-rehearsal); this is recorded with the batch.",
                plural(rest, "operation")
            ));
            Ok((
                Some(format!(
                    "{how}; the other {rest} NOT rehearsed (--skip-rehearsal)"
                )),
                true,
            ))
        }
        Some(Rehearsal { how, .. }) => {
            ctx.printer.say(format!("Rehearsed: {how}."));
            Ok((Some(how), false))
        }
        None if skip => {
            ctx.printer.warn(
                "warning: production without a rehearsal (--skip-rehearsal); this is recorded with the batch.",
            );
            Ok((None, true))
        }
        None => Err(Failure::new(
            FailureKind::Confirmation,
            "this file has not been rehearsed: production needs a sandbox run of the same content that ran to the end, or a production dry run whose checks passed",
        )
        .with_fix(format!(
            "Rehearse it first, then run this again:\n  payout run {file} --sandbox                 (the whole batch in the sandbox)\n  payout run {file} --production --dry-run    (read-only checks against production)\nOr add --skip-rehearsal to go on without one (it is recorded)."
        ))),
    }
}

/// Shows the production banner and asks for `yes` (or the grand total); `--yes` answers for
/// the user.
pub fn confirm(
    ctx: &Ctx,
    prompt: &dyn Prompt,
    totals: &Totals,
    balance: &Balance,
    rehearsal: Option<&str>,
    yes: bool,
) -> Result<(), Failure> {
    let mut banner = format!(
        "\n  *** PRODUCTION: real money, real workers ***\n{}\n  {} in all",
        plan_text(totals, Some(balance)),
        plural(totals.operations, "operation")
    );
    banner.push_str(&match rehearsal {
        Some(how) => format!("\n  rehearsed: {how}"),
        None => "\n  NOT rehearsed (--skip-rehearsal)".into(),
    });
    ctx.printer.warn(banner);
    if yes {
        ctx.printer.warn("Confirmed by --yes.");
        return Ok(());
    }
    need_terminal(prompt, false)?;
    let total = totals.grand_total();
    let question = if totals.bonuses > 0 {
        format!("Type yes (or the grand total, {total}) to go on: ")
    } else {
        "Type yes to go on: ".to_owned()
    };
    let answer = prompt.ask(&question);
    let answer = answer.as_deref().map(str::trim);
    let agreed = answer.is_some_and(|answer| {
        answer.eq_ignore_ascii_case("yes")
            || (totals.bonuses > 0
                && (answer == total.to_string() || answer == total.to_api_string()))
    });
    if agreed {
        Ok(())
    } else {
        Err(Failure::new(
            FailureKind::Confirmation,
            "not confirmed; nothing was sent",
        ))
    }
}
