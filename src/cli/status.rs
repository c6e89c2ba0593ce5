//! `payout status [BATCH]`: where a batch stands, read without taking the journal's lock.

use clap::Args;

use super::{Ctx, Outcome};
use crate::error::{Exit, Failure, FailureKind};
use crate::journal::{BatchInfo, Journal, UnfinishedImport};
use crate::output::{OutputError, Summary, plural, write_stdout};

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

/// A batch whose import is under way (another payout holds the journal) or was interrupted:
/// never shown as a batch with nothing open, for nothing of it is recorded yet.
fn unfinished_import(ctx: &Ctx, journal: &Journal, import: &UnfinishedImport) -> Outcome {
    if !journal.in_use() {
        return Err(interrupted_import(import));
    }
    ctx.put("batch", &import.name);
    ctx.put("source", &import.source);
    ctx.put("importing", true);
    if ctx.json() {
        return Ok(Exit::Ok);
    }
    print(&format!(
        "Batch {} ({}): importing — payout is recording the file; nothing of it has been sent yet.\n",
        import.name, import.source
    ))
}

/// What `status` and `resume` say about an import that a stopped process left unfinished.
pub fn interrupted_import(import: &UnfinishedImport) -> Failure {
    Failure::new(
        FailureKind::Interrupted,
        format!(
            "the last run was interrupted while importing {} (batch {}); nothing of it was sent",
            import.source, import.name
        ),
    )
    .with_fix(format!(
        "Run the same command again (`payout run {} …`): the file is imported again from its start.",
        import.source
    ))
}

fn print(text: &str) -> Outcome {
    match write_stdout(text) {
        Ok(()) | Err(OutputError::Closed) => Ok(Exit::Ok),
        Err(OutputError::Io(e)) => Err(Failure::new(
            FailureKind::Output,
            format!("failed to write to standard output: {e}"),
        )),
    }
}

pub fn status(args: StatusArgs, ctx: &Ctx) -> Outcome {
    let mut journal = Journal::open_read_only(&args.journal.path())?;
    for w in journal.take_warnings() {
        ctx.printer.warn(format!("note: {w}"));
    }
    let imports = journal.unfinished_imports()?;
    // The latest batch, or the one named, may be an import not finished: it has no items yet.
    let importing = match args.batch.as_deref() {
        None => imports.last(),
        Some(name) => imports.iter().find(|i| i.name == name),
    };
    if let Some(import) = importing {
        return unfinished_import(ctx, &journal, import);
    }
    let batch = pick_batch(&journal, args.batch.as_deref())?;
    if let Some(g) = crate::journal::members::group_status(journal.conn(), batch.id)? {
        return super::groups::status(ctx, &batch, &g);
    }
    if let Some(p) = crate::journal::chunks::prolific_status(journal.conn(), batch.id)? {
        return super::prolific::status(ctx, &batch, &p);
    }
    let summary = Summary::load(&journal, &batch)?;
    // With no batch named, the latest may be finished while an older one is not.
    let others: Vec<_> = if args.batch.is_none() {
        journal
            .unfinished_batches()?
            .into_iter()
            .filter(|(b, _)| b.id != batch.id)
            .collect()
    } else {
        Vec::new()
    };
    if ctx.json() {
        ctx.put_all(&summary);
        if !others.is_empty() {
            let list: Vec<_> = others
                .iter()
                .map(|(b, open)| {
                    serde_json::json!({"batch": b.name, "source": b.source, "pending": open})
                })
                .collect();
            ctx.put("unfinished", list);
        }
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
    if !others.is_empty() {
        text.push_str("\nUnfinished work in this journal besides this batch:\n");
        for (b, open) in &others {
            text.push_str(&format!(
                "  batch {} ({}): {} open — `payout resume {0}`\n",
                b.name,
                b.source,
                plural(*open, "operation")
            ));
        }
    }
    print(&text)
}
