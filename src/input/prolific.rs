//! Prolific bonus files: a header with a participant and/or submission ID column and an
//! amount (Prolific's submissions export with a bonus column, a survey tool's export with
//! `PROLIFIC_PID`/`SESSION_ID`, a hand-made file), or the text researchers paste into
//! Prolific's bulk bonus box (`<id>,<amount>` lines, no header). Every bad value is reported
//! with its line and column; nothing is sent for a file with any problem.

use crate::ids::{ParticipantId, ProlificIdError, StudyId, SubmissionId};
use crate::money::{AmountError, Cents};

use super::problems::{InputErrors, InputProblem};

/// Who a row pays: the file says by which ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Payee {
    Participant(ParticipantId),
    Submission(SubmissionId),
    /// Both given: the submission is paid, and it must be the participant's.
    Both(ParticipantId, SubmissionId),
    /// A pasted line: a participant or a submission ID (Prolific's box takes either); the
    /// study's submissions tell which.
    Either(String),
}

/// One row of a Prolific bonus file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProlificRow {
    pub line: u64,
    pub payee: Payee,
    pub study: Option<StudyId>,
    pub amount: Cents,
    pub reason: Option<String>,
}

/// How the file was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProlificFormat {
    Header,
    Pasted,
}

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct ProlificOptions {
    /// The column holding amounts, when it is not one payout recognises.
    pub amount_column: Option<String>,
}

pub(super) fn norm(h: &str) -> String {
    h.trim()
        .trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

pub(super) const PARTICIPANT: &[&str] = &["participantid", "prolificpid", "participant", "pid"];
const SUBMISSION: &[&str] = &["submissionid", "sessionid", "submission"];
pub(super) const AMOUNT: &[&str] = &["amount", "bonus", "bonusamount", "bonuspayment"];
const STUDY: &[&str] = &["studyid", "study"];
const REASON: &[&str] = &["reason", "bonusreason"];

pub(super) fn find(header: &[String], names: &[&str]) -> Option<usize> {
    header
        .iter()
        .position(|h| names.contains(&norm(h).as_str()))
}

/// A line of Prolific's bulk bonus box: `<id>,<amount>`.
fn is_pasted_line(fields: &[String]) -> bool {
    fields.len() == 2
        && ParticipantId::parse(&fields[0]).is_ok()
        && Cents::parse_amount(&fields[1]).is_ok()
}

/// Whether a file's first line is a Prolific bonus file's: a header with a participant or
/// submission ID column, or a pasted `<id>,<amount>` line.
pub fn first_line_is_prolific(line: &str) -> bool {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.trim_start_matches('\u{feff}').as_bytes());
    match rdr.records().next() {
        Some(Ok(rec)) => {
            let fields: Vec<String> = rec.iter().map(str::to_owned).collect();
            looks_like_prolific(&fields) || is_pasted_line(&fields)
        }
        _ => false,
    }
}

/// Whether a file's first line is a Prolific bonus file's (for a regular file only: a pipe is
/// never read twice). What counts is decided by `input::prolific`.
pub fn header_says_prolific(path: &std::path::Path) -> bool {
    use std::io::BufRead;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut line = String::new();
    if std::io::BufReader::new(f).read_line(&mut line).is_err() {
        return false;
    }
    first_line_is_prolific(&line)
}

/// Whether a header names a Prolific file (a participant or submission ID column): how
/// payout tells the platform from a file when `--platform` is not given.
pub fn looks_like_prolific(header: &[String]) -> bool {
    find(header, PARTICIPANT).is_some() || find(header, SUBMISSION).is_some()
}

fn amount_problem(e: &AmountError) -> String {
    match e {
        AmountError::Empty => {
            "is empty; write the bonus in the study's currency, such as 1.50".into()
        }
        AmountError::CurrencySign => {
            "has a currency sign; write 1.50 (the study's currency is used), not £1.50".into()
        }
        AmountError::Comma => "has a comma; write 1.50 (a dot for pence or cents)".into(),
        AmountError::Negative => "is negative; bonuses are positive amounts such as 0.50".into(),
        AmountError::TooManyDecimals => {
            "has more than 2 decimals; Prolific pays whole pence or cents such as 1.23".into()
        }
        AmountError::NotANumber => "is not a plain decimal number such as 1, 1.5 or 1.25".into(),
        AmountError::Zero => "is zero; a bonus is at least 0.01".into(),
        AmountError::TooLarge => "is too large".into(),
    }
}

pub(super) fn id_problem(what: &str, text: &str, e: &ProlificIdError) -> String {
    let shown: String = text.chars().take(40).collect();
    format!("{shown:?} {e} — is this the {what} column?")
}

/// Reads a whole Prolific bonus file.
/// The offsets just past each line end (`\n`, `\r\n` or a lone `\r`; quoted or not, as
/// an editor numbers lines).
fn line_ends(text: &[u8]) -> Vec<u64> {
    let mut ends = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\r' if text.get(i + 1) == Some(&b'\n') => {
                ends.push(i as u64 + 2);
                i += 2;
                continue;
            }
            b'\r' | b'\n' => ends.push(i as u64 + 1),
            _ => {}
        }
        i += 1;
    }
    ends
}

/// A file's records, each with its line.
pub(super) type Records = Vec<(u64, csv::StringRecord)>;

/// A Prolific file's records with their lines, blank lines left out: UTF-8 (a BOM is
/// dropped), any number of fields a line. A line that cannot be read as CSV ends the reading
/// with its problem.
pub(super) fn read_records(
    bytes: &[u8],
    file: &str,
) -> Result<(Records, Vec<InputProblem>), InputErrors> {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.trim_start_matches('\u{feff}'),
        Err(e) => {
            return Err(InputErrors::whole(
                file,
                format!(
                    "is not UTF-8 text (byte {}); save it as UTF-8 CSV",
                    e.valid_up_to() + 1
                ),
            ));
        }
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    // Lines are counted here from byte offsets: the csv crate's own count skips blank lines
    // and counts a `\r\n` file's first two lines as one.
    // Its positions may also point at the line ends before a record: they are skipped.
    let bytes = text.as_bytes();
    let ends = line_ends(bytes);
    let line_at = |byte: u64| {
        let mut b = byte as usize;
        while b < bytes.len() && matches!(bytes[b], b'\r' | b'\n') {
            b += 1;
        }
        1 + ends.partition_point(|&e| e <= b as u64) as u64
    };
    let mut problems: Vec<InputProblem> = Vec::new();
    let mut records = Vec::new();
    for r in rdr.records() {
        match r {
            Ok(rec) => {
                let line = rec.position().map_or(0, |p| line_at(p.byte()));
                records.push((line, rec));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(p.byte()));
                problems.push(InputProblem {
                    line,
                    column: None,
                    message: format!("cannot be read as CSV: {e}"),
                });
                break;
            }
        }
    }
    records.retain(|(_, r)| !(r.is_empty() || r.len() == 1 && r[0].trim().is_empty()));
    Ok((records, problems))
}

pub fn parse_prolific(
    bytes: &[u8],
    file: &str,
    opts: &ProlificOptions,
) -> Result<(ProlificFormat, Vec<ProlificRow>), InputErrors> {
    let (records, mut problems) = read_records(bytes, file)?;

    let Some((_, first)) = records.first() else {
        return Err(InputErrors::whole(file, "is empty: no rows to pay"));
    };
    let first: Vec<String> = first.iter().map(str::to_owned).collect();
    let pasted = is_pasted_line(&first);
    let mut rows = Vec::with_capacity(records.len());
    if pasted {
        for (line, rec) in &records {
            if rec.len() != 2 {
                problems.push(InputProblem {
                    line: *line,
                    column: None,
                    message: format!(
                        "has {} values; a pasted line is <participant or submission ID>,<amount>",
                        rec.len()
                    ),
                });
                continue;
            }
            let id = rec[0].trim();
            let payee = match ParticipantId::parse(id) {
                Ok(_) => Some(Payee::Either(id.to_ascii_lowercase())),
                Err(e) => {
                    problems.push(InputProblem {
                        line: *line,
                        column: Some("1".into()),
                        message: id_problem("participant or submission ID", id, &e),
                    });
                    None
                }
            };
            let amount = match Cents::parse_bonus(&rec[1]) {
                Ok(a) => Some(a),
                Err(e) => {
                    problems.push(InputProblem {
                        line: *line,
                        column: Some("2".into()),
                        message: format!("the amount {:?} {}", rec[1].trim(), amount_problem(&e)),
                    });
                    None
                }
            };
            if let (Some(payee), Some(amount)) = (payee, amount) {
                rows.push(ProlificRow {
                    line: *line,
                    payee,
                    study: None,
                    amount,
                    reason: None,
                });
            }
        }
    } else {
        let header = first;
        let participant = find(&header, PARTICIPANT);
        let submission = find(&header, SUBMISSION);
        let amount = match &opts.amount_column {
            Some(name) => header.iter().position(|h| h.trim() == name.trim()),
            None => find(&header, AMOUNT),
        };
        let study = find(&header, STUDY);
        let reason = find(&header, REASON);
        if participant.is_none() && submission.is_none() {
            problems.push(InputProblem {
                line: 1,
                column: None,
                message: "has no participant or submission ID column (participant_id, PROLIFIC_PID, \"Participant id\", submission_id, SESSION_ID, \"Submission id\")".into(),
            });
        }
        if amount.is_none() {
            problems.push(InputProblem {
                line: 1,
                column: None,
                message: match &opts.amount_column {
                    Some(n) => format!("has no column named {n:?} (given with --amount-column)"),
                    None => "has no amount column (amount, bonus), or name it with --amount-column"
                        .into(),
                },
            });
        }
        if !problems.is_empty() {
            return Err(errors(file, problems));
        }
        let col = |i: usize| Some(header[i].trim().to_owned());
        for (line, rec) in records.iter().skip(1) {
            let get = |i: Option<usize>| {
                i.and_then(|i| rec.get(i))
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
            };
            let mut bad = false;
            let p = match get(participant) {
                None => None,
                Some(t) => match ParticipantId::parse(t) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        bad = true;
                        problems.push(InputProblem {
                            line: *line,
                            column: col(participant.unwrap()),
                            message: id_problem("participant ID", t, &e),
                        });
                        None
                    }
                },
            };
            let s = match get(submission) {
                None => None,
                Some(t) => match SubmissionId::parse(t) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        bad = true;
                        problems.push(InputProblem {
                            line: *line,
                            column: col(submission.unwrap()),
                            message: id_problem("submission ID", t, &e),
                        });
                        None
                    }
                },
            };
            let st = match get(study) {
                None => None,
                Some(t) => match StudyId::parse(t) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        bad = true;
                        problems.push(InputProblem {
                            line: *line,
                            column: col(study.unwrap()),
                            message: id_problem("study ID", t, &e),
                        });
                        None
                    }
                },
            };
            let amount_text = amount.and_then(|i| rec.get(i)).unwrap_or("");
            let a = match Cents::parse_bonus(amount_text) {
                Ok(a) => Some(a),
                Err(e) => {
                    bad = true;
                    problems.push(InputProblem {
                        line: *line,
                        column: col(amount.unwrap()),
                        message: format!(
                            "the amount {:?} {}",
                            amount_text.trim(),
                            amount_problem(&e)
                        ),
                    });
                    None
                }
            };
            let payee = match (p, s) {
                (Some(p), Some(s)) => Some(Payee::Both(p, s)),
                (Some(p), None) => Some(Payee::Participant(p)),
                (None, Some(s)) => Some(Payee::Submission(s)),
                (None, None) => {
                    if !bad {
                        problems.push(InputProblem {
                            line: *line,
                            column: None,
                            message: "gives neither a participant nor a submission ID".into(),
                        });
                    }
                    None
                }
            };
            if let (Some(payee), Some(amount), false) = (payee, a, bad) {
                rows.push(ProlificRow {
                    line: *line,
                    payee,
                    study: st,
                    amount,
                    reason: get(reason).map(str::to_owned),
                });
            }
        }
        if rows.is_empty() && problems.is_empty() {
            problems.push(InputProblem {
                line: 0,
                column: None,
                message: "has a header and no rows to pay".into(),
            });
        }
    }
    if !problems.is_empty() {
        return Err(errors(file, problems));
    }
    Ok((
        if pasted {
            ProlificFormat::Pasted
        } else {
            ProlificFormat::Header
        },
        rows,
    ))
}

pub(super) fn errors(file: &str, mut problems: Vec<InputProblem>) -> InputErrors {
    problems.sort_by_key(|p| p.line);
    let total = problems.len() as u64;
    problems.truncate(super::MAX_STORED_PROBLEMS);
    InputErrors {
        file: file.to_owned(),
        problems,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P1: &str = "60ffe5c8371090c7041d43f8";
    const P2: &str = "60ffe5c8371090c7041d43f9";
    const S1: &str = "6100aaaa371090c7041d43f8";

    /// A spreadsheet's export ends its lines with `\r\n` and may keep blank lines: a bad value
    /// is named at the line an editor shows (the csv crate's own count said line 2 here).
    #[test]
    fn lines_are_counted_as_an_editor_shows_them_with_crlf_and_blank_lines() {
        for text in [
            format!("participant_id,bonus\r\n{P1},1.00\r\n\r\n{P2},1.5.0\r\n"),
            format!("participant_id,bonus\n{P1},1.00\n\n{P2},1.5.0\n"),
            format!("participant_id,bonus\r{P1},1.00\r\r{P2},1.5.0\r"),
        ] {
            let e = parse_prolific(text.as_bytes(), "p", &Default::default()).unwrap_err();
            assert_eq!(e.problems[0].line, 4, "{text:?}: {e}");
        }
    }

    #[test]
    fn a_pasted_bonus_box_is_read_as_either_ids() {
        let text = format!("{P1},4.25\n{P2},0.5\n");
        let (f, rows) = parse_prolific(text.as_bytes(), "p", &Default::default()).unwrap();
        assert_eq!(f, ProlificFormat::Pasted);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].payee, Payee::Either(P1.into()));
        assert_eq!(rows[1].amount, Cents(50));
        assert_eq!(rows[1].line, 2);
    }

    #[test]
    fn an_export_with_both_ids_and_other_columns_is_read() {
        let text = format!(
            "Submission id,Participant id,Status,Started at,bonus,Study id\n{S1},{P1},APPROVED,2026-11-01,1.50,{P2}\n"
        );
        let (f, rows) = parse_prolific(text.as_bytes(), "e", &Default::default()).unwrap();
        assert_eq!(f, ProlificFormat::Header);
        assert_eq!(
            rows[0].payee,
            Payee::Both(
                ParticipantId::parse(P1).unwrap(),
                SubmissionId::parse(S1).unwrap()
            )
        );
        assert_eq!(rows[0].study.as_ref().unwrap().as_str(), P2);
        assert_eq!(rows[0].amount, Cents(150));
    }

    #[test]
    fn bad_values_are_refused_with_line_and_column() {
        let text =
            format!("PROLIFIC_PID,amount\n{P1},1.234\nA143XRCI1YXAFE,1.00\n{P2},£1.00\n{P2},0\n");
        let e = parse_prolific(text.as_bytes(), "b.csv", &Default::default()).unwrap_err();
        let shown: Vec<String> = e.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(e.total, 4, "{shown:#?}");
        assert!(
            shown[0].starts_with(
                "line 2, column amount: the amount \"1.234\" has more than 2 decimals"
            ),
            "{shown:#?}"
        );
        assert!(
            shown[1].starts_with(
                "line 3, column PROLIFIC_PID: \"A143XRCI1YXAFE\" is not a Prolific ID"
            ),
            "{shown:#?}"
        );
        assert!(shown[2].contains("currency sign"), "{shown:#?}");
        assert!(shown[3].contains("is zero"), "{shown:#?}");
        assert!(e.to_string().contains("nothing was sent"));
    }

    #[test]
    fn a_file_without_an_id_or_amount_column_says_which() {
        let e = parse_prolific(b"worker,amount\nx,1\n", "f", &Default::default()).unwrap_err();
        assert!(
            e.problems[0]
                .message
                .contains("no participant or submission ID column")
        );
        let e = parse_prolific(
            format!("participant_id,pay\n{P1},1\n").as_bytes(),
            "f",
            &Default::default(),
        )
        .unwrap_err();
        assert!(e.problems[0].message.contains("--amount-column"));
        let opts = ProlificOptions {
            amount_column: Some("pay".into()),
        };
        assert!(
            parse_prolific(
                format!("participant_id,pay\n{P1},1\n").as_bytes(),
                "f",
                &opts
            )
            .is_ok()
        );
    }

    #[test]
    fn prolific_headers_are_told_from_mturk_ones() {
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(looks_like_prolific(&h(&["PROLIFIC_PID", "bonus"])));
        assert!(looks_like_prolific(&h(&["Submission id"])));
        assert!(!looks_like_prolific(&h(&[
            "WorkerId",
            "AssignmentId",
            "BonusAmount"
        ])));
    }
}
