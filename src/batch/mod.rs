//! A batch's life, in the library: the steps from a file to a finished batch, driven by
//! resolved settings, asking the CLI only to show lines and a confirmation. Prolific's bonus
//! and participant-group batches live here; MTurk's place and session too, the rest of its
//! life still in `cli/` (moving it is the next step).

pub mod groups;
pub mod mturk;
pub mod prolific;

/// Where the library's lines go: the CLI's printer, or a test's recorder.
pub trait Say {
    fn say(&self, line: &str);
}

impl Say for crate::output::Printer {
    fn say(&self, line: &str) {
        crate::output::Printer::say(self, line);
    }
}

/// A person at a terminal, asked a question: the CLI's stdin and stderr.
pub trait Prompt {
    /// Whether anyone can answer (stdin is a terminal).
    fn can_answer(&self) -> bool;
    /// Shows `question` and answers the line typed; `None` if nothing could be read.
    fn ask(&self, question: &str) -> Option<String>;
}

/// Production without `--yes` needs someone at a terminal to confirm: refused before any call
/// otherwise. The one rule for every platform and command.
pub fn need_terminal(prompt: &dyn Prompt, yes: bool) -> Result<(), crate::error::Failure> {
    if yes || prompt.can_answer() {
        return Ok(());
    }
    Err(crate::error::Failure::new(
        crate::error::FailureKind::Confirmation,
        "--production works with real money and real people and asks for confirmation at a terminal; there is none here, and no --yes",
    )
    .with_fix("Run it in a terminal to confirm the totals, or add --yes in a script (after a rehearsal)."))
}
