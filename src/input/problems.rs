//! Problems found in an input file: each located by line (and column), kept in file order, the
//! first [`MAX_STORED_PROBLEMS`] stored and all of them counted.

use std::collections::BinaryHeap;
use std::fmt;

/// How many problems an [`InputErrors`] keeps; the rest are only counted. A file with a million
/// bad rows still needs only a bounded report, and nobody reads past the first screens.
pub const MAX_STORED_PROBLEMS: usize = 1000;

/// How many problems the human-readable report lists before summarising the rest.
const MAX_LISTED_PROBLEMS: usize = 50;

/// One problem in the input, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputProblem {
    /// 1-based line in the file as an editor counts it; 0 when the problem is about the file
    /// (or the command line) as a whole.
    pub line: u64,
    /// The column's name as the header spells it (`#3` when the header itself is unreadable).
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, &self.column) {
            (0, _) => write!(f, "{}", self.message),
            (line, Some(col)) => write!(f, "line {line}, column {col}: {}", self.message),
            (line, None) => write!(f, "line {line}: {}", self.message),
        }
    }
}

/// Everything wrong with a file; nothing in it may be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize)]
pub struct InputErrors {
    pub file: String,
    /// The first [`MAX_STORED_PROBLEMS`] problems in file order (line, then column).
    pub problems: Vec<InputProblem>,
    /// How many problems were found in all; at least `problems.len()`.
    pub total: u64,
}

impl InputErrors {
    /// A file refused for one reason about the whole of it.
    pub fn whole(file: impl Into<String>, message: impl Into<String>) -> InputErrors {
        InputErrors {
            file: file.into(),
            problems: vec![InputProblem {
                line: 0,
                column: None,
                message: message.into(),
            }],
            total: 1,
        }
    }
}

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.total.max(self.problems.len() as u64);
        writeln!(
            f,
            "{}: {} problem{} found; nothing was sent",
            self.file,
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for p in self.problems.iter().take(MAX_LISTED_PROBLEMS) {
            writeln!(f, "  {p}")?;
        }
        let listed = self.problems.len().min(MAX_LISTED_PROBLEMS) as u64;
        if n > listed {
            writeln!(f, "  … and {} more", n - listed)?;
        }
        Ok(())
    }
}

/// Where a problem sits, for ordering: line, then column (0 = the row as a whole, else the
/// column's index + 1), then the order in which it was found.
type Position = (u64, u32, u64);

/// Collects problems as they are found, in any order, keeping the first
/// [`MAX_STORED_PROBLEMS`] by position. Duplicates are found only once the whole file has been
/// read, yet belong among the earlier lines' problems.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    /// The stored problems; the top is the one furthest into the file.
    kept: BinaryHeap<Kept>,
    total: u64,
}

#[derive(Debug)]
struct Kept {
    at: Position,
    problem: InputProblem,
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Kept {}
impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Kept {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

impl Problems {
    /// Records a problem at `line` and, when it concerns one cell, the column `column` (the
    /// header's index) named `name`. `message` is built only if the problem is stored.
    pub(crate) fn add(
        &mut self,
        line: u64,
        column: Option<(usize, &str)>,
        message: impl FnOnce() -> String,
    ) {
        let seq = self.total;
        self.total += 1;
        let col = column.map_or(0, |(i, _)| u32::try_from(i + 1).unwrap_or(u32::MAX));
        let at = (line, col, seq);
        if self.kept.len() >= MAX_STORED_PROBLEMS {
            match self.kept.peek() {
                Some(last) if last.at > at => {
                    self.kept.pop();
                }
                _ => return,
            }
        }
        self.kept.push(Kept {
            at,
            problem: InputProblem {
                line,
                column: column.map(|(_, name)| name.to_owned()),
                message: message(),
            },
        });
    }

    /// A problem about the file or the options as a whole (line 0).
    pub(crate) fn whole(&mut self, message: impl Into<String>) {
        let message = message.into();
        self.add(0, None, || message);
    }

    /// A problem about one line as a whole.
    pub(crate) fn line(&mut self, line: u64, message: impl Into<String>) {
        let message = message.into();
        self.add(line, None, || message);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.total == 0
    }

    pub(crate) fn into_errors(self, file: &str) -> InputErrors {
        let problems = self
            .kept
            .into_sorted_vec()
            .into_iter()
            .map(|k| k.problem)
            .collect();
        InputErrors {
            file: file.to_owned(),
            problems,
            total: self.total,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_come_out_in_file_order_whatever_order_they_were_found_in() {
        let mut p = Problems::default();
        p.line(9, "nine");
        p.add(3, Some((2, "C")), || "three, column C".into());
        p.whole("file");
        p.add(3, Some((0, "A")), || "three, column A".into());
        p.line(3, "three");
        let e = p.into_errors("f.csv");
        let got: Vec<String> = e.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "file",
                "line 3: three",
                "line 3, column A: three, column A",
                "line 3, column C: three, column C",
                "line 9: nine"
            ]
        );
        assert_eq!(e.total, 5);
    }

    #[test]
    fn only_the_first_problems_are_stored_but_all_are_counted() {
        let mut p = Problems::default();
        // Found in reverse: the stored ones must still be the first lines of the file.
        for line in (1..=3000u64).rev() {
            p.line(line, format!("bad {line}"));
        }
        let e = p.into_errors("f.csv");
        assert_eq!(e.total, 3000);
        assert_eq!(e.problems.len(), MAX_STORED_PROBLEMS);
        assert_eq!(e.problems[0].line, 1);
        assert_eq!(e.problems[MAX_STORED_PROBLEMS - 1].line, 1000);
        let text = e.to_string();
        assert!(text.starts_with("f.csv: 3000 problems found; nothing was sent\n"));
        assert!(text.ends_with("  … and 2950 more\n"), "{text}");
    }

    #[test]
    fn a_message_is_built_only_when_it_is_kept() {
        let mut p = Problems::default();
        for line in 1..=MAX_STORED_PROBLEMS as u64 {
            p.line(line, "x");
        }
        p.add(5000, None, || panic!("not stored, so never built"));
        assert_eq!(p.total, MAX_STORED_PROBLEMS as u64 + 1);
    }
}
