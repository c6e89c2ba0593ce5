//! `payout status [BATCH]`: where a batch stands, read without taking the journal's lock.

use clap::Args;

use super::{Ctx, Outcome};
use crate::error::{Exit, Failure, FailureKind};
use crate::journal::{BatchInfo, Journal};
use crate::output::{OutputError, Summary, write_stdout};

#[derive(Args, Debug)]
#[command(
    // Status prints its data and nothing else: --quiet has nothing to quieten.
    mut_arg("quiet", |a| a.hide(true)),
    after_help = "Examples:\n  payout status                 the latest batch\n  payout status --json | jq .paid"
)]
pub struct StatusArgs {
    /// The batch; the latest by default.
    batch: Option<String>,
    #[command(flatten)]
    journal: super::args::JournalArgs,
    /// Write the summary as one JSON object to stdout.
    #[arg(long)]
    pub json: bool,
}

/// A batch by name, or the latest one.
pub fn pick_batch(journal: &Journal, name: Option<&str>) -> Result<BatchInfo, Failure> {
    let found = match name {
        Some(n) => journal.batch_by_name(n)?,
        None => journal.latest_batch(false)?,
    };
    found.ok_or_else(|| match name {
        Some(n) => Failure::new(
            FailureKind::NoSuchBatch,
            format!("no batch named {n} in {}", journal.path().display()),
        )
        .with_fix("`payout status` without a name shows the latest batch."),
        None => Failure::new(
            FailureKind::NoSuchBatch,
            format!("no batch yet in {}", journal.path().display()),
        ),
    })
}

pub fn status(args: StatusArgs, ctx: &Ctx) -> Outcome {
    let journal = Journal::open_read_only(&args.journal.path())?;
    let batch = pick_batch(&journal, args.batch.as_deref())?;
    let summary = Summary::load(&journal, &batch)?;
    if ctx.json() {
        ctx.put_all(&summary);
        return Ok(Exit::Ok);
    }
    let mut text = format!(
        "Batch {} on {} ({})\n{}\n",
        batch.name,
        ctx.printer.target(batch.target),
        batch.source,
        summary.text()
    );
    if let Some(closed) = &summary.closed {
        text.push_str(&format!("\nThe batch is {closed}: it is never resumed.\n"));
    }
    let open_errors: Vec<_> = summary
        .failures
        .iter()
        .filter(|f| f.state != "failed")
        .take(5)
        .collect();
    if !open_errors.is_empty() {
        text.push_str("\nLast errors on open operations:\n");
        for f in open_errors {
            text.push_str(&format!("  line {}: {}\n", f.line, f.message));
        }
    }
    match write_stdout(&text) {
        Ok(()) | Err(OutputError::Closed) => Ok(Exit::Ok),
        Err(OutputError::Io(e)) => Err(Failure::new(
            FailureKind::Output,
            format!("failed to write to standard output: {e}"),
        )),
    }
}
