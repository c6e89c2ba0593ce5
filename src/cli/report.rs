//! `payout report [BATCH]`: one line per operation, to stdout or a file — never onto the
//! journal, its companion files or the batch's own input file, and never over an existing file
//! unless `--force`.

use std::path::{Path, PathBuf};

use clap::Args;

use super::status::pick_batch;
use super::{Ctx, Outcome};
use crate::error::{Exit, Failure, FailureKind};
use crate::journal::{Journal, companion_paths};
use crate::output::{OutputError, ReportFormat, plural, write_report};

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  payout report -o bonuses-report.csv\n  payout report --format json | jq '.[] | select(.outcome != \"paid\")'"
)]
pub struct ReportArgs {
    /// The batch; the latest by default.
    batch: Option<String>,
    #[command(flatten)]
    pub journal: super::args::JournalArgs,
    #[arg(long, value_enum, default_value_t = ReportFormat::Csv)]
    format: ReportFormat,
    /// Write to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

/// Whether `a` and `b` are the same file (by identity when both exist, by resolved path when
/// one does not exist yet).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
        return x.dev() == y.dev() && x.ino() == y.ino();
    }
    resolved(a).is_some_and(|ra| resolved(b).is_some_and(|rb| ra == rb))
}

/// The absolute path a file is (or would be) at: its directory resolved, its name kept.
fn resolved(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = std::fs::canonicalize(p) {
        return Some(c);
    }
    let name = p.file_name()?;
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(dir).ok()?.join(name))
}

/// Refuses an output file that would destroy what payout or the user needs.
fn check_output(path: &Path, journal: &Path, source: &str, force: bool) -> Result<(), Failure> {
    let refuse = |what: String| {
        Failure::new(
            FailureKind::UnsafeOutput,
            format!(
                "refusing to write the report onto {what} ({})",
                path.display()
            ),
        )
        .with_fix("Choose another file name with --output.")
    };
    if same_file(path, journal) {
        return Err(refuse("the journal".into()));
    }
    for companion in companion_paths(journal) {
        if same_file(path, &companion) {
            return Err(refuse(format!(
                "the journal's file {}",
                companion.display()
            )));
        }
    }
    if same_file(path, Path::new(source)) {
        return Err(refuse(format!("the batch's input file {source}")));
    }
    if path.exists() && !force {
        return Err(Failure::new(
            FailureKind::UnsafeOutput,
            format!("{} exists; the report does not replace it", path.display()),
        )
        .with_fix("Add --force to replace it, or choose another file name."));
    }
    Ok(())
}

pub fn report(args: ReportArgs, ctx: &Ctx) -> Outcome {
    let journal_path = args.journal.path();
    let journal = Journal::open_read_only(&journal_path)?;
    let batch = pick_batch(&journal, args.batch.as_deref())?;
    let written = match &args.output {
        Some(path) => {
            check_output(path, &journal_path, &batch.source, args.force)?;
            let file = std::fs::File::create(path).map_err(|e| {
                Failure::new(
                    FailureKind::Output,
                    format!("failed to create {}: {e}", path.display()),
                )
            })?;
            write_report(&journal, &batch, args.format, std::io::BufWriter::new(file))
        }
        None => write_report(
            &journal,
            &batch,
            args.format,
            std::io::BufWriter::new(std::io::stdout().lock()),
        ),
    };
    match written {
        Ok(rows) => {
            if let Some(path) = &args.output {
                ctx.printer.say(format!(
                    "Wrote {} for batch {} to {}.",
                    plural(rows, "row"),
                    batch.name,
                    path.display()
                ));
            }
            Ok(Exit::Ok)
        }
        // `payout report | head`: the reader has all it wanted.
        Err(OutputError::Closed) => Ok(Exit::Ok),
        Err(OutputError::Io(e)) => Err(Failure::new(
            FailureKind::Output,
            format!("failed to write the report: {e}"),
        )),
    }
}
