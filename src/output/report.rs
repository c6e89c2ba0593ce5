//! The per-row report, written row by row as the journal is read (a batch of any size).

use std::io::Write;

use serde::Serialize;

use super::{OutputError, rfc3339};
use crate::journal::{BatchInfo, BatchKind, ItemRecord, ItemState, Journal};
use crate::op::Operation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Csv,
    Json,
}

/// One line of a bonus batch's report.
#[derive(Serialize)]
struct BonusLine<'a> {
    line: u64,
    worker_id: &'a str,
    assignment_id: &'a str,
    amount: String,
    fee: String,
    reason: &'a str,
    outcome: &'a str,
    attempts: u32,
    error: &'a str,
    note: &'a str,
    request_token: &'a str,
    first_sent: String,
    finished: String,
}

/// One line of a qualification batch's report: one operation per line (a website file's cell
/// is located by line and column).
#[derive(Serialize)]
struct QualificationLine<'a> {
    line: u64,
    column: &'a str,
    operation: &'a str,
    worker_id: &'a str,
    qualification: String,
    value: String,
    notify: &'a str,
    reason: &'a str,
    outcome: &'a str,
    attempts: u32,
    error: &'a str,
    note: &'a str,
    first_sent: String,
    finished: String,
}

/// The outcome word of an item: "paid", "granted", ... when done, its state otherwise.
fn outcome(i: &ItemRecord) -> &'static str {
    match i.state {
        ItemState::Done => i.op.kind().done_word(),
        s => s.as_str(),
    }
}

/// A report line of either shape.
#[derive(Serialize)]
#[serde(untagged)]
enum Line<'a> {
    Bonus(BonusLine<'a>),
    Qualification(QualificationLine<'a>),
}

fn line(kind: BatchKind, i: &ItemRecord) -> Line<'_> {
    let error = i.error.as_deref().unwrap_or("");
    let note = i.note.as_deref().unwrap_or("");
    let first_sent = rfc3339(i.first_sent_ms);
    let finished = rfc3339(i.finished_ms);
    match (kind, &i.op) {
        (
            BatchKind::Bonus,
            Operation::Bonus {
                worker,
                assignment,
                amount,
                reason,
            },
        ) => Line::Bonus(BonusLine {
            line: i.origin.line,
            worker_id: worker.as_str(),
            assignment_id: assignment.as_str(),
            amount: amount.to_api_string(),
            fee: i.fee.map(|f| f.to_api_string()).unwrap_or_default(),
            reason,
            outcome: outcome(i),
            attempts: i.attempts,
            error,
            note,
            request_token: i.token.as_deref().unwrap_or(""),
            first_sent,
            finished,
        }),
        (_, op) => {
            let (value, notify, reason) = match op {
                Operation::Score { value, notify, .. } => {
                    (value.to_string(), if *notify { "yes" } else { "no" }, "")
                }
                Operation::Revoke { reason, .. } | Operation::Unblock { reason, .. } => {
                    (String::new(), "", reason.as_deref().unwrap_or(""))
                }
                Operation::Block { reason, .. } | Operation::Bonus { reason, .. } => {
                    (String::new(), "", reason.as_str())
                }
            };
            Line::Qualification(QualificationLine {
                line: i.origin.line,
                column: i.origin.column.as_deref().unwrap_or(""),
                operation: op.kind().as_str(),
                worker_id: op.worker().as_str(),
                qualification: op
                    .qualification()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                value,
                notify,
                reason,
                outcome: outcome(i),
                attempts: i.attempts,
                error,
                note,
                first_sent,
                finished,
            })
        }
    }
}

fn csv_error(e: csv::Error) -> OutputError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => OutputError::from(io),
        other => OutputError::Io(std::io::Error::other(format!("{other:?}"))),
    }
}

/// Writes the report of `batch` to `out`, one row at a time; returns how many rows.
pub fn write_report<W: Write>(
    journal: &Journal,
    batch: &BatchInfo,
    format: ReportFormat,
    mut out: W,
) -> Result<u64, OutputError> {
    let mut rows = 0u64;
    let mut failure: Option<OutputError> = None;
    let journal_failed = |e: crate::journal::JournalError| {
        OutputError::Io(std::io::Error::other(crate::error::chain(&e)))
    };
    match format {
        ReportFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            journal
                .for_each_item(batch.id, |i| {
                    if failure.is_none()
                        && let Err(e) = w.serialize(line(batch.kind, &i))
                    {
                        failure = Some(csv_error(e));
                    }
                    rows += 1;
                    Ok(())
                })
                .map_err(journal_failed)?;
            if let Some(e) = failure {
                return Err(e);
            }
            w.flush()?;
        }
        ReportFormat::Json => {
            out.write_all(b"[")?;
            journal
                .for_each_item(batch.id, |i| {
                    if failure.is_none() {
                        let sep: &[u8] = if rows == 0 { b"\n" } else { b",\n" };
                        let written = out.write_all(sep).and_then(|()| {
                            serde_json::to_writer(&mut out, &line(batch.kind, &i))
                                .map_err(std::io::Error::from)
                        });
                        if let Err(e) = written {
                            failure = Some(e.into());
                        }
                    }
                    rows += 1;
                    Ok(())
                })
                .map_err(journal_failed)?;
            if let Some(e) = failure {
                return Err(e);
            }
            out.write_all(b"\n]\n")?;
        }
    }
    out.flush()?;
    Ok(rows)
}
