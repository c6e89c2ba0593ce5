//! The command line: argument parsing, one file per subcommand, and the one place that turns a
//! command's result into output and an exit status.
//!
//! Each subcommand is a short story over the library's parts; the parts know nothing of the CLI.

mod args;
mod balance;
mod cancel;
mod completions;
mod doctor;
mod groups;
mod prolific;
mod report;
mod resume;
mod run;
mod setup;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::{Map, Value};

use crate::emulator::EmulatorArgs;
use crate::error::{Exit, Failure, FailureKind};
use crate::output::{OutputError, Printer, write_stdout};

pub use args::{JournalArgs, PaceArgs, TargetArgs};

#[derive(Parser, Debug)]
#[command(
    name = "payout",
    version,
    about = "Pay MTurk bonuses and assign qualifications from a CSV file, exactly once",
    long_about = "Pay Amazon Mechanical Turk bonuses and assign qualification scores, revokes and blocks from a CSV file, exactly once.\n\nEvery operation is journaled before and after its call; running the same command again resumes an interrupted batch and never does an operation twice.",
    after_help = "Examples:\n  payout run bonuses.csv --emulator     try it on the built-in emulator, no AWS account needed\n  payout run bonuses.csv --dry-run      check the file and show the plan, totals and fees\n  payout run bonuses.csv                pay in the MTurk sandbox (the default)\n  payout status                         where the latest batch stands\n\nFirst time with an AWS account:\n  payout setup --csv credentials.csv    store the IAM user's access key\n  payout doctor                         check everything a batch needs, with the fix for each problem"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate, plan, journal and run a CSV of bonuses or qualification changes (re-run it to resume).
    Run(run::RunArgs),
    /// Continue an interrupted batch without its file.
    Resume(resume::ResumeArgs),
    /// Verify what an unfinished batch sent without an answer, then close the rest of it.
    Cancel(cancel::CancelArgs),
    /// Prolific: say whether the rows of a batch that were not observed were paid (after checking Prolific's dashboard).
    Resolve(prolific::ResolveArgs),
    /// Counts, money and last errors of a batch.
    Status(status::StatusArgs),
    /// One line per operation: outcome, attempts, error, request token, times.
    Report(report::ReportArgs),
    /// Store an IAM user's access key (from the IAM console's credentials.csv), or with --prolific a Prolific API token, for payout.
    Setup(setup::SetupArgs),
    /// Check credentials, the sandbox (and production), the clock and the journal (with --prolific: the Prolific token, workspace and balance); say what fixes each problem.
    Doctor(doctor::DoctorArgs),
    /// The account's available balance (read-only).
    Balance(balance::BalanceArgs),
    /// Run a local MTurk that speaks the real wire protocol.
    Emulator(EmulatorArgs),
    /// Shell completions for bash, zsh, fish, elvish or PowerShell, to stdout.
    Completions(completions::CompletionsArgs),
    /// The man page, to stdout.
    Man(completions::ManArgs),
}

pub use crate::error::Outcome;
pub use crate::output::Ctx;

/// The terminal payout runs at: whom the library's questions are put to.
pub struct Terminal;

impl crate::batch::Prompt for Terminal {
    fn can_answer(&self) -> bool {
        std::io::IsTerminal::is_terminal(&std::io::stdin())
    }

    fn ask(&self, question: &str) -> Option<String> {
        use std::io::{BufRead, Write};
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(question.as_bytes());
        let _ = err.flush();
        drop(err);
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).ok()?;
        Some(answer)
    }
}

/// Parses the command line and runs it; the binary's whole `main`.
pub fn main() -> ExitCode {
    let json = std::env::args().any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            if json && code != 0 {
                let failure = Failure::new(FailureKind::Usage, e.kind().to_string());
                let _ = emit_json(Map::new(), Exit::Usage, Some(&failure));
            }
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
    };
    let (quiet, json) = cli.command.output_flags();
    let ctx = Ctx::new(Printer::detect(quiet), json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let f = Failure::new(
                FailureKind::Journal,
                format!("failed to start the async runtime: {e}"),
            );
            return finish(&ctx, Err(f)).into();
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(args, &ctx).await,
            Command::Resume(args) => resume::resume(args, &ctx).await,
            Command::Cancel(args) => cancel::cancel(args, &ctx).await,
            Command::Status(args) => status::status(args, &ctx),
            Command::Resolve(args) => prolific::resolve(args, &ctx).await,
            Command::Report(args) => report::report(args, &ctx),
            Command::Setup(args) => setup::setup(args, &ctx),
            Command::Doctor(args) => doctor::doctor(args, &ctx).await,
            Command::Balance(args) => balance::balance(args, &ctx).await,
            Command::Completions(args) => completions::completions(args, &ctx),
            Command::Man(args) => completions::man(args, &ctx),
            Command::Emulator(args) => crate::emulator::serve_cli(args)
                .await
                .map(|()| Exit::Ok)
                .map_err(|e| Failure::new(FailureKind::Usage, format!("the emulator: {e}"))),
        }
    });
    // Calls still under way after a second Ctrl-C are abandoned, not awaited.
    runtime.shutdown_timeout(Duration::from_millis(100));
    finish(&ctx, outcome).into()
}

/// Prints the failure (if any), writes the `--json` object, and decides the exit status.
fn finish(ctx: &Ctx, outcome: Outcome) -> Exit {
    let (exit, failure) = match outcome {
        Ok(exit) => (exit, None),
        Err(f) => (f.exit(), Some(f)),
    };
    if let Some(f) = &failure {
        ctx.printer.warn(f.to_string());
    }
    let Some(fields) = ctx.take_json() else {
        return exit;
    };
    match emit_json(fields, exit, failure.as_ref()) {
        Ok(()) | Err(OutputError::Closed) => exit,
        Err(OutputError::Io(e)) => {
            ctx.printer
                .warn(format!("error: failed to write the JSON output: {e}"));
            Exit::Error
        }
    }
}

/// The one `--json` object every exit writes: `exit_code`, `error` (kind, message, fix) when
/// there is one, and what the command added (plan, summary, problems, ...).
fn emit_json(
    mut fields: Map<String, Value>,
    exit: Exit,
    failure: Option<&Failure>,
) -> Result<(), OutputError> {
    fields.insert("exit_code".into(), Value::from(exit.code()));
    fields.insert(
        "error".into(),
        failure
            .and_then(|f| serde_json::to_value(f).ok())
            .unwrap_or(Value::Null),
    );
    let text = serde_json::to_string_pretty(&Value::Object(fields)).unwrap_or_default();
    write_stdout(&(text + "\n"))
}

impl Command {
    /// `(quiet, json)` for the subcommand.
    fn output_flags(&self) -> (bool, bool) {
        match self {
            Command::Run(a) => (a.journal.quiet, a.pace.json),
            Command::Resume(a) => (a.journal.quiet, a.pace.json),
            Command::Cancel(a) => (a.journal.quiet, a.pace.json),
            Command::Status(a) => (false, a.json),
            Command::Resolve(a) => (a.quiet(), false),
            Command::Setup(a) => (false, a.json),
            Command::Doctor(a) => (false, a.json),
            Command::Balance(a) => (false, a.json),
            Command::Report(a) => (a.journal.quiet, false),
            Command::Emulator(_) | Command::Completions(_) | Command::Man(_) => (false, false),
        }
    }
}

/// `$XDG_DATA_HOME/payout/journal.sqlite` (or the platform's data directory).
pub fn default_journal_path() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("payout")
        .join("journal.sqlite")
}
