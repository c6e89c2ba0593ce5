//! Exit statuses and the errors payout expects: one table from every kind of failure to its
//! exit status, its name in `--json`, and the step that fixes it (as cargo-nextest's
//! `ExpectedError`). Commands return a [`Failure`]; only the top level renders it.

use std::fmt;

use serde::Serialize;

/// Exit statuses, as the README's table documents them (a test checks the two agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    Error = 1,
    Usage = 2,
    SomeFailed = 3,
    Incomplete = 4,
    InvalidInput = 5,
    Refused = 6,
}

impl Exit {
    pub const ALL: [Exit; 7] = [
        Exit::Ok,
        Exit::Error,
        Exit::Usage,
        Exit::SomeFailed,
        Exit::Incomplete,
        Exit::InvalidInput,
        Exit::Refused,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// The README's words for this status.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => {
                "every operation done or skipped (for `--dry-run`: the plan and its read-only checks ran; what they found is listed, and under `preflight` in `--json`)"
            }
            Exit::Error => {
                "payout itself failed (journal unreadable or lost, disk full, output unwritable, …)"
            }
            Exit::Usage => {
                "bad command-line usage (an unknown option, a malformed URL, an unknown batch name, …)"
            }
            Exit::SomeFailed => {
                "finished, but the platform refused some operations (listed with their line and its message)"
            }
            Exit::Incomplete => {
                "incomplete: operations remain open (stopped by Ctrl-C or SIGTERM, a systemic error such as insufficient funds, out of attempts, or not verifiable now), or the last run was stopped while it read or imported its file — run the same command again"
            }
            Exit::InvalidInput => "the input file is invalid; nothing was sent or journaled",
            Exit::Refused => {
                "refused to start, nothing sent: unusable or unreachable credentials or endpoint, journal in use, newer or foreign journal, batch on another target or endpoint, overlap with another batch, production without confirmation, a failing `payout doctor` check"
            }
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> std::process::ExitCode {
        std::process::ExitCode::from(e.code())
    }
}

/// Every kind of failure payout expects, each with its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Bad command-line usage payout found after parsing (clap's own errors exit 2 too).
    Usage,
    /// No batch by the name given.
    NoSuchBatch,
    InvalidInput,
    /// The journal is locked by another payout.
    JournalLocked,
    /// The journal was written by a newer payout.
    JournalTooNew,
    /// The file given as a journal is not one.
    NotAJournal,
    /// The journal cannot be read or written, or was lost while running.
    Journal,
    /// Output (stdout, a report file) cannot be written.
    Output,
    /// Credentials missing, temporary, rejected or not allowed.
    Credentials,
    /// The endpoint cannot be reached or does not answer.
    Unreachable,
    /// The account cannot be used (not linked, no access, clock skew) or its balance unread.
    Account,
    /// A batch resumed on another target or endpoint.
    TargetMismatch,
    /// Rows overlap another batch.
    Overlap,
    /// Production without the rehearsal or confirmation it needs.
    Confirmation,
    /// A bonus above `--max-bonus`, or a total above `--max-total`.
    OverCap,
    /// Qualification types named but not found.
    MissingQualification,
    /// Writing a report where it must not go.
    UnsafeOutput,
    /// Stopped before anything was sent (Ctrl-C during the checks).
    Interrupted,
    /// `payout doctor` found something that stops a batch.
    ChecksFailed,
}

impl FailureKind {
    pub const ALL: [FailureKind; 19] = [
        FailureKind::Usage,
        FailureKind::NoSuchBatch,
        FailureKind::InvalidInput,
        FailureKind::JournalLocked,
        FailureKind::JournalTooNew,
        FailureKind::NotAJournal,
        FailureKind::Journal,
        FailureKind::Output,
        FailureKind::Credentials,
        FailureKind::Unreachable,
        FailureKind::Account,
        FailureKind::TargetMismatch,
        FailureKind::Overlap,
        FailureKind::Confirmation,
        FailureKind::OverCap,
        FailureKind::MissingQualification,
        FailureKind::UnsafeOutput,
        FailureKind::Interrupted,
        FailureKind::ChecksFailed,
    ];

    pub fn exit(self) -> Exit {
        use FailureKind::*;
        match self {
            Usage | NoSuchBatch => Exit::Usage,
            InvalidInput => Exit::InvalidInput,
            Journal | Output => Exit::Error,
            Interrupted => Exit::Incomplete,
            JournalLocked | JournalTooNew | NotAJournal | Credentials | Unreachable | Account
            | TargetMismatch | Overlap | Confirmation | OverCap | MissingQualification
            | UnsafeOutput | ChecksFailed => Exit::Refused,
        }
    }
}

/// What a command ends with: an exit status, or a failure to explain.
pub type Outcome = Result<Exit, Failure>;

/// A failure as the user sees it: what happened, and the step that fixes it.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            kind,
            message: message.into(),
            fix: None,
        }
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Failure {
        self.fix = Some(fix.into());
        self
    }

    pub fn exit(&self) -> Exit {
        self.kind.exit()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n{fix}")?;
        }
        Ok(())
    }
}

/// An error's message with every cause after it ("failed to open …: permission denied").
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_kind_is_in_the_output_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../schemas/output.schema.json")).unwrap();
        let kinds = schema["properties"]["error"]["properties"]["kind"]["enum"]
            .as_array()
            .unwrap()
            .clone();
        let ours: Vec<serde_json::Value> = FailureKind::ALL
            .iter()
            .map(|k| serde_json::to_value(k).unwrap())
            .collect();
        assert_eq!(ours, kinds);
    }

    #[test]
    fn the_readme_table_is_this_table() {
        let readme = include_str!("../README.md");
        for exit in Exit::ALL {
            let row = format!("| {} | {} |", exit.code(), exit.meaning());
            assert!(readme.contains(&row), "README.md lacks the row:\n{row}");
        }
        let rows = readme
            .lines()
            .filter(|l| {
                l.starts_with("| ")
                    && l[2..]
                        .split(' ')
                        .next()
                        .is_some_and(|c| c.parse::<u8>().is_ok())
            })
            .count();
        assert_eq!(rows, Exit::ALL.len(), "README.md has other exit rows");
    }
}
