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
