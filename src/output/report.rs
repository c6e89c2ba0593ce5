//! The per-row report, written row by row as the journal is read (a batch of any size).

use std::io::Write;

use serde::Serialize;

use super::{OutputError, rfc3339};
use crate::journal::chunks::{self, ProlificReportRow};
use crate::journal::{BatchInfo, BatchKind, ItemRecord, ItemState, Journal};
use crate::money::{Currency, ExactMinor};
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

/// Where report lines go, one at a time, as CSV rows or the elements of one JSON array.
enum Sink<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Json { out: W, rows: u64 },
}

impl<W: Write> Sink<W> {
    fn new(format: ReportFormat, out: W) -> Sink<W> {
        match format {
            ReportFormat::Csv => Sink::Csv(Box::new(csv::Writer::from_writer(out))),
            ReportFormat::Json => Sink::Json { out, rows: 0 },
        }
    }

    fn push<T: Serialize>(&mut self, line: &T) -> Result<(), OutputError> {
        match self {
            Sink::Csv(w) => w.serialize(line).map_err(csv_error),
            Sink::Json { out, rows } => {
                let sep: &[u8] = match *rows {
                    0 => b"[\n",
                    _ => b",\n",
                };
                *rows += 1;
                out.write_all(sep)?;
                serde_json::to_writer(&mut *out, line).map_err(std::io::Error::from)?;
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<(), OutputError> {
        match self {
            Sink::Csv(mut w) => Ok(w.flush()?),
            Sink::Json { mut out, rows } => {
                out.write_all(if rows == 0 { b"[\n]\n" } else { b"\n]\n" })?;
                Ok(out.flush()?)
            }
        }
    }
}

/// One line of a Prolific batch's report: the row, where its chunk stands, Prolific's fees.
#[derive(Serialize)]
struct ProlificLine<'a> {
    line: u64,
    study_id: &'a str,
    submission_id: &'a str,
    participant_id: &'a str,
    amount: String,
    currency: &'static str,
    reason: &'a str,
    outcome: &'static str,
    chunk: String,
    bulk_id: &'a str,
    /// The chunk's fees and VAT as Prolific's set-up answered them (for the whole chunk).
    chunk_fees: String,
    chunk_vat: String,
    pay_sent: String,
    finished: String,
    note: &'a str,
}

fn prolific_line(r: &ProlificReportRow, currency: Currency) -> ProlificLine<'_> {
    let exact = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| ExactMinor::parse(t).ok())
            .map(|x| x.display(currency))
            .unwrap_or_default()
    };
    ProlificLine {
        line: r.line,
        study_id: &r.study,
        submission_id: &r.submission,
        participant_id: r.participant.as_deref().unwrap_or(""),
        amount: r.amount.to_api_string(),
        currency: currency.code(),
        reason: r.reason.as_deref().unwrap_or(""),
        outcome: r.state.as_str(),
        chunk: r.chunk.map(|c| c.to_string()).unwrap_or_default(),
        bulk_id: r.bulk_id.as_deref().unwrap_or(""),
        chunk_fees: exact(&r.chunk_fees),
        chunk_vat: exact(&r.chunk_vat),
        pay_sent: rfc3339(r.pay_sent_ms),
        finished: rfc3339(r.finished_ms),
        note: r.note.as_deref().unwrap_or(""),
    }
}

/// One line of a participant-group batch's report: the change, its group, where it stands.
#[derive(Serialize)]
struct GroupLine<'a> {
    line: u64,
    group: &'a str,
    group_id: &'a str,
    participant_id: &'a str,
    action: &'static str,
    outcome: &'static str,
    calls: u32,
    error: &'a str,
    note: &'a str,
}

/// Writes the report of `batch` to `out`, one row at a time; returns how many rows.
pub fn write_report<W: Write>(
    journal: &Journal,
    batch: &BatchInfo,
    format: ReportFormat,
    out: W,
) -> Result<u64, OutputError> {
    let mut failure: Option<OutputError> = None;
    let journal_failed = |e: crate::journal::JournalError| {
        OutputError::Io(std::io::Error::other(crate::error::chain(&e)))
    };
    let mut sink = Sink::new(format, out);
    if crate::journal::members::is_group_batch(journal.conn(), batch.id).map_err(journal_failed)? {
        let mut rows = 0u64;
        crate::journal::members::for_each_report_row(journal.conn(), batch.id, &mut |r, g| {
            rows += 1;
            if failure.is_none()
                && let Err(e) = sink.push(&GroupLine {
                    line: r.line,
                    group: &g.named,
                    group_id: g.group_id.as_deref().unwrap_or(""),
                    participant_id: &r.participant,
                    action: r.action.as_str(),
                    outcome: r.state.as_str(),
                    calls: r.calls,
                    error: r.error.as_deref().unwrap_or(""),
                    note: r.note.as_deref().unwrap_or(""),
                })
            {
                failure = Some(e);
            }
            Ok(())
        })
        .map_err(journal_failed)?;
        if let Some(e) = failure {
            return Err(e);
        }
        sink.finish()?;
        return Ok(rows);
    }
    let prolific = chunks::prolific_status(journal.conn(), batch.id).map_err(journal_failed)?;
    let rows = match prolific {
        Some(st) => chunks::for_each_report_row(journal.conn(), batch.id, |r| {
            if failure.is_none()
                && let Err(e) = sink.push(&prolific_line(&r, st.currency))
            {
                failure = Some(e);
            }
            Ok(())
        }),
        None => {
            let mut rows = 0u64;
            journal
                .for_each_item(batch.id, |i| {
                    if failure.is_none()
                        && let Err(e) = sink.push(&line(batch.kind, &i))
                    {
                        failure = Some(e);
                    }
                    rows += 1;
                    Ok(())
                })
                .map(|()| rows)
        }
    }
    .map_err(journal_failed)?;
    if let Some(e) = failure {
        return Err(e);
    }
    sink.finish()?;
    Ok(rows)
}
