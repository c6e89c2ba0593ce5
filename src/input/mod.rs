//! Reading and validating a bonuses CSV: every problem collected with its line and column.
//!
//! This module is synchronous and pure apart from reading the file; it never talks to MTurk or
//! the journal, so a file that fails here has caused nothing anywhere.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::ids::{AssignmentId, WorkerId};
use crate::money::Cents;

/// The column contract, shared with users and tests as `schemas/bonuses.columns.json`.
pub const COLUMNS_SCHEMA: &str = include_str!("../schemas/bonuses.columns.json");

/// Longest reason MTurk accepts, in characters.
pub const MAX_REASON_CHARS: usize = 4096;

/// How many errors a report lists before summarising the rest.
const MAX_LISTED_ERRORS: usize = 50;

#[derive(Debug, Deserialize)]
pub struct ColumnSchema {
    pub columns: Vec<ColumnSpec>,
}

#[derive(Debug, Deserialize)]
pub struct ColumnSpec {
    pub role: String,
    pub api_name: String,
    pub required: bool,
    pub aliases: Vec<String>,
    pub pattern: Option<String>,
    pub max_length: Option<usize>,
}

/// The embedded column contract, parsed once.
pub fn schema() -> &'static ColumnSchema {
    static SCHEMA: OnceLock<ColumnSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::from_str(COLUMNS_SCHEMA).expect("schemas/bonuses.columns.json is valid JSON")
    })
}

/// Header comparison key: case, spaces, underscores, hyphens and dots do not matter.
fn header_key(name: &str) -> String {
    name.trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// One valid row of a bonuses file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BonusRow {
    /// 1-based line number of the record in the file (the header is line 1).
    pub line: u64,
    pub worker: WorkerId,
    pub assignment: AssignmentId,
    pub amount: Cents,
    pub reason: String,
}

/// How to read a file: the knobs the command line offers.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// Read the amount from this column instead of the recognised names.
    pub amount_column: Option<String>,
    /// Reason for rows whose reason is empty, or for files without a reason column.
    pub default_reason: Option<String>,
    /// Accept rows that repeat another row's worker, assignment, amount and reason.
    pub allow_duplicates: bool,
}

/// One problem in the input, located as precisely as the file allows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputProblem {
    /// 1-based line; 0 when the problem is about the file as a whole.
    pub line: u64,
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InputErrors {
    pub file: String,
    pub problems: Vec<InputProblem>,
}

impl fmt::Display for InputErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{}: {} problem{} found; nothing was sent",
            self.file,
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for p in self.problems.iter().take(MAX_LISTED_ERRORS) {
            writeln!(f, "  {p}")?;
        }
        if n > MAX_LISTED_ERRORS {
            writeln!(f, "  … and {} more", n - MAX_LISTED_ERRORS)?;
        }
        Ok(())
    }
}

/// Reads and validates a bonuses file.
pub fn read_bonuses(path: &Path, opts: &InputOptions) -> Result<Vec<BonusRow>, InputErrors> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => parse_bonuses(&bytes, &name, opts),
        Err(e) => Err(InputErrors {
            file: name,
            problems: vec![InputProblem {
                line: 0,
                column: None,
                message: format!("cannot read the file: {e}"),
            }],
        }),
    }
}

/// Where each role's column sits in the header.
struct Layout {
    worker: usize,
    assignment: usize,
    amount: usize,
    reason: Option<usize>,
    headers: Vec<String>,
}

fn find_layout(headers: &[String], opts: &InputOptions) -> Result<Layout, Vec<InputProblem>> {
    let keys: Vec<String> = headers.iter().map(|h| header_key(h)).collect();
    let mut problems = Vec::new();
    let mut found: HashMap<&str, usize> = HashMap::new();
    for spec in &schema().columns {
        let explicit = if spec.role == "amount" {
            opts.amount_column.as_deref()
        } else {
            None
        };
        let matches: Vec<usize> = match explicit {
            Some(name) => keys
                .iter()
                .enumerate()
                .filter(|(_, k)| **k == header_key(name))
                .map(|(i, _)| i)
                .collect(),
            None => {
                let aliases: Vec<String> = spec.aliases.iter().map(|a| header_key(a)).collect();
                keys.iter()
                    .enumerate()
                    .filter(|(_, k)| aliases.contains(k))
                    .map(|(i, _)| i)
                    .collect()
            }
        };
        match matches.as_slice() {
            [i] => {
                found.insert(spec.role.as_str(), *i);
            }
            [] if spec.role == "reason" && opts.default_reason.is_some() => {}
            [] => {
                let message = match explicit {
                    Some(name) => format!(
                        "no column named {name:?} (from --amount-column); the header has: {}",
                        headers.join(", ")
                    ),
                    None if spec.role == "reason" => format!(
                        "no reason column; add a column named {} (shown to the worker) or give --reason TEXT",
                        spec.api_name
                    ),
                    None => format!(
                        "no {} column; name it {} (also accepted: {}), or use --amount-column for the amount",
                        spec.role,
                        spec.api_name,
                        spec.aliases.join(", ")
                    ),
                };
                if spec.required || spec.role == "reason" {
                    problems.push(InputProblem {
                        line: 1,
                        column: None,
                        message,
                    });
                }
            }
            many => problems.push(InputProblem {
                line: 1,
                column: None,
                message: format!(
                    "more than one column could be the {} ({}); keep one, or rename the others",
                    spec.role,
                    many.iter()
                        .map(|i| headers[*i].clone())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Layout {
        worker: found["worker"],
        assignment: found["assignment"],
        amount: found["amount"],
        reason: found.get("reason").copied(),
        headers: headers.to_vec(),
    })
}

/// Parses and validates the bytes of a bonuses file. `name` labels messages.
pub fn parse_bonuses(
    bytes: &[u8],
    name: &str,
    opts: &InputOptions,
) -> Result<Vec<BonusRow>, InputErrors> {
    let fail = |problems: Vec<InputProblem>| InputErrors {
        file: name.to_owned(),
        problems,
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(fail(vec![InputProblem {
            line: 0,
            column: None,
            message: "the file is empty; expected a header line such as WorkerId,AssignmentId,BonusAmount,Reason and one row per bonus".into(),
        }]));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);

    let mut problems = Vec::new();
    let mut records = reader.byte_records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => {
            return Err(fail(vec![InputProblem {
                line: 1,
                column: None,
                message: format!("the header cannot be read: {e}"),
            }]));
        }
        None => unreachable!("non-blank input has a first record"),
    };
    let mut headers = Vec::with_capacity(header.len());
    for (i, field) in header.iter().enumerate() {
        match std::str::from_utf8(field) {
            Ok(s) => headers.push(s.to_owned()),
            Err(_) => {
                problems.push(InputProblem {
                    line: 1,
                    column: Some(format!("#{}", i + 1)),
                    message: "is not valid UTF-8; save the file as UTF-8 (CSV UTF-8 in Excel)"
                        .into(),
                });
                headers.push(String::from_utf8_lossy(field).into_owned());
            }
        }
    }
    let layout = match find_layout(&headers, opts) {
        Ok(l) => l,
        Err(mut p) => {
            problems.append(&mut p);
            return Err(fail(problems));
        }
    };

    let mut lines = LineCounter::default();
    let mut rows = Vec::new();
    let mut seen: HashMap<(String, String, u64, String), u64> = HashMap::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.line_at(bytes, p.byte()));
                problems.push(InputProblem {
                    line,
                    column: None,
                    message: format!("cannot be read as CSV: {e}"),
                });
                continue;
            }
        };
        let line = record
            .position()
            .map_or(0, |p| lines.line_at(bytes, p.byte()));
        if record.iter().all(<[u8]>::is_empty) {
            continue; // blank lines and ",,," rows that spreadsheets leave at the end
        }
        if record.len() != layout.headers.len() {
            problems.push(InputProblem {
                line,
                column: None,
                message: format!(
                    "has {} field{}, but the header has {}; a reason containing a comma must be in double quotes",
                    record.len(),
                    if record.len() == 1 { "" } else { "s" },
                    layout.headers.len()
                ),
            });
            continue;
        }
        let before = problems.len();
        let cell = |idx: usize| Cell {
            record: &record,
            idx,
            line,
            column: &layout.headers[idx],
        };
        let worker = cell(layout.worker).parse(&mut problems, |s| {
            WorkerId::parse(s).map_err(|e| format!("worker ID {s:?} {e}"))
        });
        let assignment = cell(layout.assignment).parse(&mut problems, |s| {
            AssignmentId::parse(s).map_err(|e| format!("assignment ID {s:?} {e}"))
        });
        let amount = cell(layout.amount).parse(&mut problems, |s| {
            Cents::parse_bonus(s).map_err(|e| format!("amount {s:?} {e}"))
        });
        let check_reason = |s: &str| check_reason(s, opts.default_reason.as_deref());
        let reason = match layout.reason {
            Some(idx) => cell(idx).parse(&mut problems, check_reason),
            // No reason column: --reason gave the default (find_layout made sure).
            None => check_reason("")
                .map_err(|message| {
                    problems.push(InputProblem {
                        line,
                        column: Some("Reason".into()),
                        message,
                    })
                })
                .ok(),
        };
        if problems.len() != before {
            continue;
        }
        let (Some(worker), Some(assignment), Some(amount), Some(reason)) =
            (worker, assignment, amount, reason)
        else {
            unreachable!("every missing field recorded a problem");
        };
        let key = (
            worker.as_str().to_owned(),
            assignment.as_str().to_owned(),
            amount.0,
            reason.clone(),
        );
        if let Some(first) = seen.get(&key) {
            if !opts.allow_duplicates {
                problems.push(InputProblem {
                    line,
                    column: None,
                    message: format!(
                        "repeats line {first} (same worker, assignment, amount and reason); remove one, or pass --allow-duplicates to pay both"
                    ),
                });
                continue;
            }
        } else {
            seen.insert(key, line);
        }
        rows.push(BonusRow {
            line,
            worker,
            assignment,
            amount,
            reason,
        });
    }
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    if rows.is_empty() {
        return Err(fail(vec![InputProblem {
            line: 0,
            column: None,
            message: "the file has a header but no rows to pay".into(),
        }]));
    }
    Ok(rows)
}

/// One cell of a record, located for error messages.
struct Cell<'a> {
    record: &'a csv::ByteRecord,
    idx: usize,
    line: u64,
    column: &'a str,
}

impl Cell<'_> {
    /// Decodes the cell as UTF-8 and parses it; a failure becomes a problem at this line and
    /// column, and `None`.
    fn parse<T>(
        &self,
        problems: &mut Vec<InputProblem>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let result = match std::str::from_utf8(&self.record[self.idx]) {
            Ok(text) => parse(text),
            Err(e) => Err(format!(
                "is not valid UTF-8 (bad byte at position {}); save the file as UTF-8",
                e.valid_up_to() + 1
            )),
        };
        result
            .map_err(|message| {
                problems.push(InputProblem {
                    line: self.line,
                    column: Some(self.column.to_owned()),
                    message,
                })
            })
            .ok()
    }
}

/// A reason as MTurk takes it: the row's own, or the default for an empty cell; 1–4,096 chars.
fn check_reason(text: &str, default: Option<&str>) -> Result<String, String> {
    let reason = if text.is_empty() {
        default.unwrap_or_default()
    } else {
        text
    };
    let chars = reason.chars().count();
    if reason.trim().is_empty() {
        Err(
            "reason is empty; MTurk shows it to the worker, so write one (or give --reason TEXT)"
                .into(),
        )
    } else if chars > MAX_REASON_CHARS {
        Err(format!(
            "reason is {chars} characters long; MTurk accepts at most {MAX_REASON_CHARS}"
        ))
    } else {
        Ok(reason.to_owned())
    }
}

/// Line numbers from byte offsets. The csv crate's own line count lags behind on CRLF files,
/// and a researcher opening the file in an editor needs the true line.
#[derive(Default)]
struct LineCounter {
    /// Bytes before `upto` hold `newlines` line ends.
    upto: usize,
    newlines: u64,
}

impl LineCounter {
    /// The 1-based line of the record starting at `byte` (which may point at the `\n` of a
    /// CRLF pair). Offsets must not decrease between calls.
    fn line_at(&mut self, bytes: &[u8], byte: u64) -> u64 {
        let end = (byte as usize + 1).min(bytes.len());
        if end > self.upto {
            self.newlines += bytes[self.upto..end]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            self.upto = end;
        }
        self.newlines + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<BonusRow>, InputErrors> {
        parse_bonuses(text.as_bytes(), "t.csv", &InputOptions::default())
    }

    fn problems(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .problems
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn reads_api_names_aliases_bom_crlf_quotes_and_whitespace() {
        let text = "\u{feff}Worker ID,assignment_id,Bonus, reason \r\n A1B2C3 , 3XYZ ,1.50,\"Thanks, great work\"\r\n";
        let rows = parse(text).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[0].worker.as_str(), "A1B2C3");
        assert_eq!(rows[0].assignment.as_str(), "3XYZ");
        assert_eq!(rows[0].amount, Cents(150));
        assert_eq!(rows[0].reason, "Thanks, great work");
    }

    #[test]
    fn reports_every_bad_field_with_line_and_column() {
        let text = "WorkerId,AssignmentId,BonusAmount,Reason\n\
                    A1,X1,$1.00,ok\n\
                    B2,X2,1.234,ok\n\
                    A3,x-3,1,\n";
        let p = problems(text);
        assert_eq!(p.len(), 5, "{p:#?}");
        assert!(
            p[0].starts_with("line 2, column BonusAmount: amount \"$1.00\" has a currency sign")
        );
        assert!(
            p[1].starts_with(
                "line 3, column WorkerId: worker ID \"B2\" must start with the letter A"
            )
        );
        assert!(
            p[2].starts_with(
                "line 3, column BonusAmount: amount \"1.234\" has more than 2 decimals"
            )
        );
        assert!(p[3].starts_with("line 4, column AssignmentId: assignment ID \"x-3\""));
        assert!(p[4].starts_with("line 4, column Reason: reason is empty"));
    }

    #[test]
    fn default_reason_fills_missing_column_and_empty_cells() {
        let opts = InputOptions {
            default_reason: Some("Thank you".into()),
            ..Default::default()
        };
        let rows = parse_bonuses(b"worker_id,assignment_id,amount\nA1,X1,2\n", "t", &opts).unwrap();
        assert_eq!(rows[0].reason, "Thank you");
        let rows = parse_bonuses(
            b"worker_id,assignment_id,amount,reason\nA1,X1,2,\nA1,X2,2,own\n",
            "t",
            &opts,
        )
        .unwrap();
        assert_eq!(rows[0].reason, "Thank you");
        assert_eq!(rows[1].reason, "own");
    }

    #[test]
    fn amount_column_names_a_batch_results_column() {
        let text =
            "HITId,WorkerId,AssignmentId,Answer.score,MyBonus,Reason\nH1,A1,X1,7,0.70,score\n";
        let opts = InputOptions {
            amount_column: Some("MyBonus".into()),
            ..Default::default()
        };
        let rows = parse_bonuses(text.as_bytes(), "t", &opts).unwrap();
        assert_eq!(rows[0].amount, Cents(70));
        let err = parse_bonuses(
            text.as_bytes(),
            "t",
            &InputOptions {
                amount_column: Some("Nope".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.problems[0].message.contains("no column named \"Nope\""));
    }

    #[test]
    fn duplicates_are_refused_unless_allowed() {
        let text =
            "WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,r\nA1,X1,1,r\nA1,X1,1,other\n";
        let p = problems(text);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("line 3: repeats line 2"));
        let opts = InputOptions {
            allow_duplicates: true,
            ..Default::default()
        };
        assert_eq!(parse_bonuses(text.as_bytes(), "t", &opts).unwrap().len(), 3);
    }

    #[test]
    fn whole_file_problems() {
        assert!(problems("")[0].contains("the file is empty"));
        assert!(problems("WorkerId,AssignmentId,BonusAmount,Reason\n")[0].contains("no rows"));
        let p = problems("WorkerId,BonusAmount,Reason\nA1,1,r\n");
        assert_eq!(
            p,
            vec![
                "line 1: no assignment column; name it AssignmentId (also accepted: AssignmentId, assignment_id, assignmentId, Assignment ID, assignment), or use --amount-column for the amount"
            ]
        );
        let p = problems("WorkerId,worker_id,AssignmentId,BonusAmount,Reason\nA1,A1,X,1,r\n");
        assert!(p[0].contains("more than one column could be the worker"));
    }

    #[test]
    fn ragged_rows_bad_utf8_and_long_reasons() {
        let p = problems("WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,a,b\n");
        assert!(p[0].starts_with("line 2: has 5 fields, but the header has 4"));
        let mut bytes = b"WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,caf".to_vec();
        bytes.extend_from_slice(&[0xE9, b'\n']);
        let err = parse_bonuses(&bytes, "t", &InputOptions::default()).unwrap_err();
        assert!(
            err.problems[0]
                .to_string()
                .starts_with("line 2, column Reason: is not valid UTF-8")
        );
        let long = format!(
            "WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,{}\n",
            "x".repeat(5000)
        );
        assert!(
            problems(&long)[0].starts_with("line 2, column Reason: reason is 5000 characters long")
        );
    }

    #[test]
    fn crlf_line_numbers_are_true_lines() {
        let p =
            problems("WorkerId,AssignmentId,BonusAmount,Reason\r\nA1,X1,1,r\r\nA2,X2,1.5.0,r\r\n");
        assert!(p[0].starts_with("line 3, column BonusAmount"), "{p:?}");
    }

    fn spec(role: &str) -> &'static ColumnSpec {
        schema().columns.iter().find(|c| c.role == role).unwrap()
    }

    proptest::proptest! {
        /// The schema file is the contract: the validators accept exactly what its patterns do.
        #[test]
        fn validators_agree_with_the_schema_patterns(text in "[A0-9a.$,-]{0,8}") {
            let worker = regex::Regex::new(spec("worker").pattern.as_deref().unwrap()).unwrap();
            let entity = regex::Regex::new(spec("assignment").pattern.as_deref().unwrap()).unwrap();
            let amount = regex::Regex::new(spec("amount").pattern.as_deref().unwrap()).unwrap();
            proptest::prop_assert_eq!(worker.is_match(&text), WorkerId::parse(&text).is_ok());
            proptest::prop_assert_eq!(entity.is_match(&text), AssignmentId::parse(&text).is_ok());
            let parsed = Cents::parse_bonus(&text);
            let is_zero = matches!(parsed, Err(crate::money::AmountError::Zero));
            proptest::prop_assert_eq!(amount.is_match(&text) && !is_zero, parsed.is_ok());
        }
    }

    #[test]
    fn blank_trailing_rows_are_ignored() {
        let rows = parse("WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,r\n,,,\n\n").unwrap();
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn line_numbers_count_quoted_newlines() {
        let text =
            "WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,\"two\nlines\"\nA2,X2,bad,r\n";
        let p = problems(text);
        assert!(p[0].starts_with("line 4, column BonusAmount"), "{p:?}");
    }
}
