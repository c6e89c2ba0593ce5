//! `payout completions SHELL` and `payout man`: shell completions and a man page, generated from
//! the same clap definition that parses the command line, so they never drift from it.

use clap::{Args, CommandFactory};

use super::{Cli, Ctx, Outcome};
use crate::error::{Exit, Failure, FailureKind};
use crate::output::{OutputError, write_stdout};

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  payout completions bash > ~/.local/share/bash-completion/completions/payout\n  payout completions zsh > ~/.zfunc/_payout       (with fpath+=~/.zfunc before compinit)\n  payout completions fish > ~/.config/fish/completions/payout.fish"
)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  payout man | man -l -\n  payout man > ~/.local/share/man/man1/payout.1"
)]
pub struct ManArgs {}

fn emit(bytes: Vec<u8>) -> Outcome {
    match write_stdout(&String::from_utf8_lossy(&bytes)) {
        Ok(()) | Err(OutputError::Closed) => Ok(Exit::Ok),
        Err(OutputError::Io(e)) => Err(Failure::new(
            FailureKind::Output,
            format!("failed to write to standard output: {e}"),
        )),
    }
}

pub fn completions(args: CompletionsArgs, _ctx: &Ctx) -> Outcome {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "payout", &mut out);
    emit(out)
}

pub fn man(_args: ManArgs, _ctx: &Ctx) -> Outcome {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .map_err(|e| {
            Failure::new(
                FailureKind::Output,
                format!("failed to render the man page: {e}"),
            )
        })?;
    emit(out)
}
