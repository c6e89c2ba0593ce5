//! The journal of chunked batches (Prolific): their rows, their chunks' write-ahead life and the
//! two tables that make a second pay of an id impossible to record (`set_ups`, `pays`).
//!
//! Stores and answers; what a state means and what may follow it is `engine::chunk_next`.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Journal, JournalError, now_ms};
use crate::ids::{BulkBonusId, ParticipantId, StudyId, SubmissionId};
use crate::item::ChunkState;
use crate::item::SetUpAnswer;
use crate::money::{Cents, Currency, ExactMinor};

/// The rows a run still has work for, as an SQL list: word for word the condition of the
/// partial index `chunk_rows_open` (schemas/journal/0004_chunks.sql).
pub(crate) const CHUNK_ROW_OPEN_STATES: &str = "('pending', 'chunked', 'not_observed')";

/// A row's state. `Chunked` rows belong to a chunk whose state says the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowState {
    Pending,
    Chunked,
    Paid,
    NotObserved,
    Failed,
    Cancelled,
}

impl RowState {
    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Pending => "pending",
            RowState::Chunked => "chunked",
            RowState::Paid => "paid",
            RowState::NotObserved => "not_observed",
            RowState::Failed => "failed",
            RowState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RowState> {
        [
            RowState::Pending,
            RowState::Chunked,
            RowState::Paid,
            RowState::NotObserved,
            RowState::Failed,
            RowState::Cancelled,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A row to record: one bonus to one submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChunkRow {
    pub line: u64,
    pub study: StudyId,
    pub submission: SubmissionId,
    pub participant: Option<ParticipantId>,
    pub amount: Cents,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRowRecord {
    pub batch: i64,
    pub seq: u32,
    pub line: u64,
    pub study: StudyId,
    pub submission: SubmissionId,
    pub amount: Cents,
    pub chunk: Option<u32>,
    pub state: RowState,
    /// The submission's `bonus_payments` before its chunk's pay.
    pub baseline: Option<Vec<ExactMinor>>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    pub batch: i64,
    pub chunk: u32,
    pub study: StudyId,
    pub state: ChunkState,
    pub bulk_id: Option<BulkBonusId>,
    pub amount: Option<ExactMinor>,
    pub fees: Option<ExactMinor>,
    pub vat: Option<ExactMinor>,
    pub total: Option<ExactMinor>,
    pub pay_sent_ms: Option<i64>,
    pub answer: Option<String>,
}

/// Every change the chunk executor makes, applied by the journal's writer like [`super::Write`].
#[derive(Debug, Clone)]
pub enum ChunkWrite {
    /// A new chunk of pending rows.
    Plan {
        batch: i64,
        chunk: u32,
        study: StudyId,
        seqs: Vec<u32>,
    },
    /// The set-up's answer: its id and the platform's amounts.
    SetUp {
        batch: i64,
        chunk: u32,
        answer: SetUpAnswer,
    },
    /// The baseline of each row, and "pay sent" — committed before the pay leaves. Fails if the
    /// id was ever paid (the `pays` key), so a pay can never be recorded, hence sent, twice.
    PaySent {
        batch: i64,
        chunk: u32,
        baselines: Vec<(u32, Vec<ExactMinor>)>,
        /// The workspace's available balance the run read before its first pay.
        balance_before: Option<ExactMinor>,
    },
    /// A new state for a chunk, with the pay's answer as text when there was one.
    State {
        batch: i64,
        chunk: u32,
        state: ChunkState,
        answer: Option<String>,
        resolution: Option<&'static str>,
    },
    /// Rows seen paid (or decided paid by an operator).
    RowsPaid {
        batch: i64,
        seqs: Vec<u32>,
        note: String,
    },
    /// Every row in no chunk is cancelled (`payout cancel`); answers how many.
    CancelPending { batch: i64 },
    /// The chunk's rows still open take `state` (`Pending` frees them from the chunk).
    OpenRows {
        batch: i64,
        chunk: u32,
        state: RowState,
        note: String,
    },
}

fn exact_text(x: &ExactMinor) -> String {
    x.to_string()
}

fn baseline_text(b: &[ExactMinor]) -> String {
    let parts: Vec<String> = b.iter().map(exact_text).collect();
    format!("[{}]", parts.join(","))
}

fn parse_baseline(text: &str) -> Option<Vec<ExactMinor>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    if inner.trim().is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .map(|p| ExactMinor::parse(p).ok())
        .collect()
}

fn changed_one(n: usize, what: &str) -> Result<(), JournalError> {
    if n == 1 {
        Ok(())
    } else {
        Err(JournalError::Write(format!(
            "{what}: expected to change one chunk, changed {n}"
        )))
    }
}

pub(super) fn apply(tx: &Transaction<'_>, w: &ChunkWrite) -> Result<i64, JournalError> {
    let now = now_ms();
    match w {
        ChunkWrite::Plan {
            batch,
            chunk,
            study,
            seqs,
        } => {
            tx.execute(
                "INSERT INTO chunks (batch_id, chunk, study_id, state, planned_ms)
                 VALUES (?1, ?2, ?3, 'planned', ?4)",
                params![batch, chunk, study.as_str(), now],
            )?;
            let mut up = tx.prepare_cached(
                "UPDATE chunk_rows SET chunk = ?3, state = 'chunked'
                 WHERE batch_id = ?1 AND seq = ?2 AND state = 'pending'",
            )?;
            for seq in seqs {
                changed_one(up.execute(params![batch, seq, chunk])?, "plan a row")?;
            }
        }
        ChunkWrite::SetUp {
            batch,
            chunk,
            answer,
        } => {
            tx.execute(
                "INSERT INTO set_ups (bulk_id, batch_id, chunk, ms) VALUES (?1, ?2, ?3, ?4)",
                params![answer.id.as_str(), batch, chunk, now],
            )?;
            let n = tx.execute(
                "UPDATE chunks SET state = 'set_up', bulk_id = ?3, amount = ?4, fees = ?5,
                    vat = ?6, total = ?7, set_up_ms = ?8
                 WHERE batch_id = ?1 AND chunk = ?2 AND state = 'planned'",
                params![
                    batch,
                    chunk,
                    answer.id.as_str(),
                    exact_text(&answer.amount),
                    exact_text(&answer.fees),
                    exact_text(&answer.vat),
                    exact_text(&answer.total),
                    now
                ],
            )?;
            changed_one(n, "record a set-up")?;
        }
        ChunkWrite::PaySent {
            batch,
            chunk,
            baselines,
            balance_before,
        } => {
            let bulk: Option<String> = tx
                .query_row(
                    "SELECT bulk_id FROM chunks WHERE batch_id = ?1 AND chunk = ?2
                     AND state = 'set_up'",
                    params![batch, chunk],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            let bulk = bulk.ok_or_else(|| {
                JournalError::Write(format!("chunk {chunk} is not set up: its pay is not sent"))
            })?;
            // The guard of last resort: an id in `pays` is never recorded, so never sent, again.
            tx.execute(
                "INSERT INTO pays (bulk_id, batch_id, chunk, sent_ms) VALUES (?1, ?2, ?3, ?4)",
                params![bulk, batch, chunk, now],
            )
            .map_err(|e| {
                JournalError::Write(format!(
                    "bulk bonus payment {bulk} was paid before; it is never paid again ({e})"
                ))
            })?;
            let mut up = tx.prepare_cached(
                "UPDATE chunk_rows SET baseline = ?3 WHERE batch_id = ?1 AND seq = ?2",
            )?;
            for (seq, b) in baselines {
                up.execute(params![batch, seq, baseline_text(b)])?;
            }
            let n = tx.execute(
                "UPDATE chunks SET state = 'pay_sent', pay_sent_ms = ?3, balance_before = ?4
                 WHERE batch_id = ?1 AND chunk = ?2 AND state = 'set_up'",
                params![batch, chunk, now, balance_before.as_ref().map(exact_text)],
            )?;
            changed_one(n, "record a pay as sent")?;
        }
        ChunkWrite::State {
            batch,
            chunk,
            state,
            answer,
            resolution,
        } => {
            let settled = matches!(
                state,
                ChunkState::Observed | ChunkState::Void | ChunkState::Failed
            )
            .then_some(now);
            let answered = answer.as_ref().map(|_| now);
            let n = tx.execute(
                "UPDATE chunks SET state = ?3, answer = COALESCE(?4, answer),
                    answered_ms = COALESCE(?5, answered_ms), settled_ms = COALESCE(?6, settled_ms),
                    resolution = COALESCE(?7, resolution)
                 WHERE batch_id = ?1 AND chunk = ?2",
                params![
                    batch,
                    chunk,
                    state.as_str(),
                    answer,
                    answered,
                    settled,
                    resolution
                ],
            )?;
            changed_one(n, "record a chunk's state")?;
        }
        ChunkWrite::RowsPaid { batch, seqs, note } => {
            let mut up = tx.prepare_cached(
                "UPDATE chunk_rows SET state = 'paid', finished_ms = ?3, note = ?4
                 WHERE batch_id = ?1 AND seq = ?2 AND state IN ('chunked', 'not_observed')",
            )?;
            for seq in seqs {
                up.execute(params![batch, seq, now, note])?;
            }
        }
        ChunkWrite::CancelPending { batch } => {
            let n = tx.execute(
                "UPDATE chunk_rows SET state = 'cancelled', finished_ms = ?2,
                    note = 'the batch was cancelled before this row was set up'
                 WHERE batch_id = ?1 AND state = 'pending'",
                params![batch, now],
            )?;
            return Ok(n as i64);
        }
        ChunkWrite::OpenRows {
            batch,
            chunk,
            state,
            note,
        } => {
            let free = *state == RowState::Pending;
            tx.execute(
                "UPDATE chunk_rows SET state = ?3, note = ?4,
                    chunk = CASE WHEN ?5 THEN NULL ELSE chunk END,
                    baseline = CASE WHEN ?5 THEN NULL ELSE baseline END,
                    finished_ms = CASE WHEN ?3 IN ('failed', 'cancelled') THEN ?6 ELSE NULL END
                 WHERE batch_id = ?1 AND chunk = ?2 AND state IN ('chunked', 'not_observed')",
                params![batch, chunk, state.as_str(), note, free, now],
            )?;
        }
    }
    Ok(0)
}

const ROW_COLUMNS: &str = "batch_id, seq, line, study_id, submission_id, amount_minor, chunk, \
    state, baseline, note";

fn corrupt(what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        Box::<dyn std::error::Error + Send + Sync>::from(what),
    )
}

fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChunkRowRecord> {
    let study: String = r.get(3)?;
    let submission: String = r.get(4)?;
    let state: String = r.get(7)?;
    let baseline: Option<String> = r.get(8)?;
    Ok(ChunkRowRecord {
        batch: r.get(0)?,
        seq: r.get(1)?,
        line: r.get::<_, i64>(2)? as u64,
        study: StudyId::parse(&study).map_err(|e| corrupt(e.to_string()))?,
        submission: SubmissionId::parse(&submission).map_err(|e| corrupt(e.to_string()))?,
        amount: Cents(r.get::<_, i64>(5)? as u64),
        chunk: r.get(6)?,
        state: RowState::parse(&state).ok_or_else(|| corrupt(format!("row state {state}")))?,
        baseline: match baseline {
            None => None,
            Some(t) => Some(parse_baseline(&t).ok_or_else(|| corrupt(format!("baseline {t}")))?),
        },
        note: r.get(9)?,
    })
}

fn exact(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<ExactMinor>> {
    let t: Option<String> = r.get(i)?;
    t.map(|t| ExactMinor::parse(&t).map_err(|e| corrupt(e.to_string())))
        .transpose()
}

fn chunk_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChunkRecord> {
    let study: String = r.get(2)?;
    let state: String = r.get(3)?;
    let bulk: Option<String> = r.get(4)?;
    Ok(ChunkRecord {
        batch: r.get(0)?,
        chunk: r.get(1)?,
        study: StudyId::parse(&study).map_err(|e| corrupt(e.to_string()))?,
        state: ChunkState::parse(&state).ok_or_else(|| corrupt(format!("chunk state {state}")))?,
        bulk_id: bulk
            .map(|b| BulkBonusId::parse(&b).map_err(|e| corrupt(e.to_string())))
            .transpose()?,
        amount: exact(r, 5)?,
        fees: exact(r, 6)?,
        vat: exact(r, 7)?,
        total: exact(r, 8)?,
        pay_sent_ms: r.get(9)?,
        answer: r.get(10)?,
    })
}

/// Every chunk of a batch, in order.
pub fn chunks_of(conn: &Connection, batch: i64) -> Result<Vec<ChunkRecord>, JournalError> {
    let mut st = conn.prepare_cached(
        "SELECT batch_id, chunk, study_id, state, bulk_id, amount, fees, vat, total,
                pay_sent_ms, answer
         FROM chunks WHERE batch_id = ?1 ORDER BY chunk",
    )?;
    let v = st
        .query_map([batch], chunk_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(v)
}

/// A chunk's rows, in order.
pub fn rows_of_chunk(
    conn: &Connection,
    batch: i64,
    chunk: u32,
) -> Result<Vec<ChunkRowRecord>, JournalError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM chunk_rows WHERE batch_id = ?1 AND chunk = ?2 ORDER BY seq"
    ))?;
    let v = st
        .query_map(params![batch, chunk], row_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(v)
}

/// A batch's rows in `state`, in order, at most `limit`.
pub fn rows_in_state(
    conn: &Connection,
    batch: i64,
    state: RowState,
    limit: usize,
) -> Result<Vec<ChunkRowRecord>, JournalError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM chunk_rows WHERE batch_id = ?1 AND state = ?2
         ORDER BY seq LIMIT ?3"
    ))?;
    let v = st
        .query_map(
            params![batch, state.as_str(), limit.min(i64::MAX as usize) as i64],
            row_from,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(v)
}

/// How many rows of a batch are in each state.
pub fn row_counts(conn: &Connection, batch: i64) -> Result<Vec<(RowState, u64)>, JournalError> {
    let mut st = conn.prepare_cached(
        "SELECT state, COUNT(*) FROM chunk_rows WHERE batch_id = ?1 GROUP BY state",
    )?;
    let v = st
        .query_map([batch], |r| {
            let s: String = r.get(0)?;
            let n: i64 = r.get(1)?;
            Ok((s, n))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(v.into_iter()
        .filter_map(|(s, n)| RowState::parse(&s).map(|s| (s, n as u64)))
        .collect())
}

/// How many pays were ever sent for an id (0 or 1: the table's key allows no more).
pub fn pays_of(conn: &Connection, bulk: &BulkBonusId) -> Result<u64, JournalError> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM pays WHERE bulk_id = ?1",
        [bulk.as_str()],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

/// The next free chunk number of a batch.
pub fn next_chunk(conn: &Connection, batch: i64) -> Result<u32, JournalError> {
    let n: Option<u32> = conn.query_row(
        "SELECT MAX(chunk) FROM chunks WHERE batch_id = ?1",
        [batch],
        |r| r.get(0),
    )?;
    Ok(n.map_or(0, |n| n + 1))
}

/// A Prolific batch recorded with this fingerprint (content and ledger): its id and name.
pub fn batch_by_fingerprint(
    conn: &Connection,
    fingerprint: &str,
) -> Result<Option<(i64, String)>, JournalError> {
    Ok(conn
        .query_row(
            "SELECT id, name FROM batches WHERE fingerprint = ?1 AND platform = 'prolific'
             AND closed IS NULL ORDER BY id DESC LIMIT 1",
            [fingerprint],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// The newest closed (cancelled) Prolific batch with this fingerprint, if any: its name.
pub fn closed_batch_by_fingerprint(
    conn: &Connection,
    fingerprint: &str,
) -> Result<Option<String>, JournalError> {
    Ok(conn
        .query_row(
            "SELECT name FROM batches WHERE fingerprint = ?1 AND platform = 'prolific'
             AND closed IS NOT NULL ORDER BY id DESC LIMIT 1",
            [fingerprint],
            |r| r.get(0),
        )
        .optional()?)
}

/// Whether a dry run of this content passed its checks on this ledger.
pub fn prolific_rehearsed(
    conn: &Connection,
    content_digest: &str,
    ledger: &str,
) -> Result<bool, JournalError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM rehearsals WHERE content_digest = ?1 AND ledger = ?2 AND how = 'preflight'
             LIMIT 1",
            params![content_digest, ledger],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// The batch row of a Prolific batch about to be recorded.
pub(super) struct ProlificBatch<'a> {
    pub name: &'a str,
    pub fingerprint: &'a str,
    pub ledger: &'a str,
    pub source: &'a str,
    /// `bonus`, or `qualification` for participant groups.
    pub kind: &'static str,
    pub currency: Currency,
    pub skip_rehearsal: bool,
    pub emulator: bool,
}

/// Inserts a Prolific batch's row (whether it skipped its rehearsal is kept in its options);
/// answers its id.
pub(super) fn insert_prolific_batch(
    tx: &Transaction<'_>,
    b: &ProlificBatch<'_>,
) -> Result<i64, JournalError> {
    let options = if b.skip_rehearsal {
        r#"{"skip_rehearsal":true}"#
    } else {
        "{}"
    };
    tx.execute(
        "INSERT INTO batches (name, fingerprint, content_digest, kind, target, ledger, source,
                              created_ms, options, imported, platform, currency)
         VALUES (?1, ?2, NULL, ?9, ?8, ?3, ?4, ?5, ?6, 1, 'prolific', ?7)",
        params![
            b.name,
            b.fingerprint,
            b.ledger,
            b.source,
            now_ms(),
            options,
            b.currency.code(),
            if b.emulator { "emulator" } else { "production" },
            b.kind
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

impl Journal {
    /// Records a chunked batch and its rows in one transaction; answers the batch's id.
    pub fn record_chunked_batch(
        &mut self,
        name: &str,
        ledger: &str,
        source: &str,
        currency: Currency,
        rows: &[NewChunkRow],
    ) -> Result<i64, JournalError> {
        self.record_chunked_batch_with(name, name, ledger, source, currency, false, false, rows)
    }

    /// [`Journal::record_chunked_batch`] with the batch's fingerprint and whether it skipped
    /// its rehearsal (recorded in its options).
    #[allow(clippy::too_many_arguments)]
    pub fn record_chunked_batch_with(
        &mut self,
        name: &str,
        fingerprint: &str,
        ledger: &str,
        source: &str,
        currency: Currency,
        skip_rehearsal: bool,
        emulator: bool,
        rows: &[NewChunkRow],
    ) -> Result<i64, JournalError> {
        let tx = self.conn_mut().transaction()?;
        let id = insert_prolific_batch(
            &tx,
            &ProlificBatch {
                name,
                fingerprint,
                ledger,
                source,
                kind: "bonus",
                currency,
                skip_rehearsal,
                emulator,
            },
        )?;
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO chunk_rows (batch_id, seq, line, study_id, submission_id,
                     participant_id, amount_minor, reason, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending')",
            )?;
            for (seq, r) in rows.iter().enumerate() {
                ins.execute(params![
                    id,
                    seq as u32,
                    r.line as i64,
                    r.study.as_str(),
                    r.submission.as_str(),
                    r.participant.as_ref().map(ParticipantId::as_str),
                    r.amount.0 as i64,
                    r.reason,
                ])?;
            }
        }
        tx.commit()?;
        self.check_file()?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Write;

    /// The last guard: even if a chunk were set up again by a bug, the id it was paid under
    /// cannot be recorded as paid a second time, so the pay is never sent.
    #[test]
    fn a_bulk_id_paid_once_cannot_be_recorded_as_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let study = StudyId::parse("60ffe5c8371090c7041d43f8").unwrap();
        let row = NewChunkRow {
            line: 2,
            study: study.clone(),
            submission: SubmissionId::parse("60ffe5c8371090c7041d43f9").unwrap(),
            participant: None,
            amount: Cents(150),
            reason: None,
        };
        let batch = j
            .record_chunked_batch("b", "prolific@test", "b.csv", Currency::Gbp, &[row])
            .unwrap();
        let answer = SetUpAnswer {
            id: BulkBonusId::parse("bulk1").unwrap(),
            amount: ExactMinor::parse("150").unwrap(),
            fees: ExactMinor::ZERO,
            vat: ExactMinor::ZERO,
            total: ExactMinor::parse("150").unwrap(),
        };
        let w = |c: ChunkWrite| Write::Chunk(c);
        j.write(&w(ChunkWrite::Plan {
            batch,
            chunk: 0,
            study,
            seqs: vec![0],
        }))
        .unwrap();
        j.write(&w(ChunkWrite::SetUp {
            batch,
            chunk: 0,
            answer,
        }))
        .unwrap();
        let sent = || {
            w(ChunkWrite::PaySent {
                batch,
                chunk: 0,
                baselines: vec![(0, vec![])],
                balance_before: None,
            })
        };
        j.write(&sent()).unwrap();
        assert_eq!(
            pays_of(j.conn(), &BulkBonusId::parse("bulk1").unwrap()).unwrap(),
            1
        );
        // A bug puts the chunk back to "set up" under the same id.
        j.write(&w(ChunkWrite::State {
            batch,
            chunk: 0,
            state: ChunkState::SetUp,
            answer: None,
            resolution: None,
        }))
        .unwrap();
        let again = j.write(&sent());
        assert!(
            matches!(&again, Err(JournalError::Write(m)) if m.contains("never paid again")),
            "{again:?}"
        );
        assert_eq!(
            chunks_of(j.conn(), batch).unwrap()[0].state,
            ChunkState::SetUp
        );
    }

    #[test]
    fn a_row_awaits_only_in_a_chunk_whose_pay_may_still_show_and_is_paid_only_when_seen() {
        let rows = [
            "pending",
            "chunked",
            "paid",
            "not_observed",
            "failed",
            "cancelled",
        ]
        .map(|t| RowState::parse(t).unwrap());
        for row in rows {
            for chunk in ChunkState::ALL.map(Some).into_iter().chain([None]) {
                let out = RowOutcome::of(row, chunk);
                let awaiting =
                    row == RowState::Chunked && chunk.is_some_and(|c| c.awaits_observation());
                assert_eq!(
                    matches!(out, RowOutcome::Accepted | RowOutcome::Unknown),
                    awaiting,
                    "{row:?} in {chunk:?}"
                );
                assert_eq!(
                    out == RowOutcome::Paid,
                    row == RowState::Paid,
                    "{row:?} in {chunk:?}"
                );
                assert_eq!(
                    out == RowOutcome::Accepted,
                    awaiting && chunk == Some(ChunkState::Accepted)
                );
            }
        }
    }

    #[test]
    fn baselines_round_trip_their_text() {
        let b = vec![
            ExactMinor::parse("150").unwrap(),
            ExactMinor::parse("99.5").unwrap(),
        ];
        assert_eq!(parse_baseline(&baseline_text(&b)), Some(b));
        assert_eq!(parse_baseline("[]"), Some(vec![]));
        assert_eq!(parse_baseline("[1e3]"), None);
    }
}

/// Where a Prolific batch stands: its rows by state with their money, its chunks by state, and
/// the set-ups Prolific answered that were never paid.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProlificStatus {
    pub currency: Currency,
    pub rows: u64,
    pub paid: u64,
    pub paid_minor: u64,
    /// In a chunk whose pay was sent (accepted or unknown), not yet seen on Prolific.
    pub awaiting: u64,
    pub not_observed: u64,
    pub pending: u64,
    pub pending_minor: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Chunks by state (`accepted`, `unknown`, `not_observed`, …).
    pub chunks: std::collections::BTreeMap<String, u64>,
    /// Set-up ids never paid (free; listed so nobody pays them by hand).
    pub unpaid_set_ups: Vec<String>,
    /// Rows not observed: (line, submission, amount in minor units, what it showed before).
    pub not_observed_rows: Vec<(u64, String, u64, String)>,
}

/// The status of `batch` if it is a Prolific bonus batch; `None` for any other.
pub fn prolific_status(
    conn: &Connection,
    batch: i64,
) -> Result<Option<ProlificStatus>, JournalError> {
    let found: Option<(String, String, String)> = conn
        .query_row(
            "SELECT platform, currency, kind FROM batches WHERE id = ?1",
            [batch],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((platform, currency, kind)) = found else {
        return Ok(None);
    };
    // Prolific's bonus batches only (its group batches are `members::group_status`).
    if platform != "prolific" || kind != "bonus" {
        return Ok(None);
    }
    let mut s = ProlificStatus {
        currency: Currency::parse(&currency).unwrap_or(Currency::Gbp),
        rows: 0,
        paid: 0,
        paid_minor: 0,
        awaiting: 0,
        not_observed: 0,
        pending: 0,
        pending_minor: 0,
        failed: 0,
        cancelled: 0,
        chunks: Default::default(),
        unpaid_set_ups: Vec::new(),
        not_observed_rows: Vec::new(),
    };
    let mut st = conn.prepare(
        "SELECT r.state, COALESCE(c.state, ''), COUNT(*), SUM(r.amount_minor)
         FROM chunk_rows r LEFT JOIN chunks c ON c.batch_id = r.batch_id AND c.chunk = r.chunk
         WHERE r.batch_id = ?1 GROUP BY r.state, c.state",
    )?;
    let groups = st
        .query_map([batch], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? as u64,
                r.get::<_, i64>(3)? as u64,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (row, chunk, n, minor) in groups {
        s.rows += n;
        let row = RowState::parse(&row).ok_or_else(|| corrupt(format!("row state {row:?}")))?;
        match RowOutcome::of(row, ChunkState::parse(&chunk)) {
            RowOutcome::Paid => {
                s.paid += n;
                s.paid_minor += minor;
            }
            RowOutcome::NotObserved => s.not_observed += n,
            RowOutcome::Failed => s.failed += n,
            RowOutcome::Cancelled => s.cancelled += n,
            RowOutcome::Accepted | RowOutcome::Unknown => s.awaiting += n,
            RowOutcome::Pending => {
                s.pending += n;
                s.pending_minor += minor;
            }
        }
    }
    for ch in chunks_of(conn, batch)? {
        *s.chunks.entry(ch.state.as_str().to_owned()).or_default() += 1;
    }
    let mut st = conn.prepare(
        "SELECT s.bulk_id FROM set_ups s WHERE s.batch_id = ?1
         AND NOT EXISTS (SELECT 1 FROM pays p WHERE p.bulk_id = s.bulk_id) ORDER BY s.ms",
    )?;
    s.unpaid_set_ups = st
        .query_map([batch], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut st = conn.prepare(
        "SELECT line, submission_id, amount_minor, COALESCE(baseline, '?') FROM chunk_rows
         WHERE batch_id = ?1 AND state = 'not_observed' ORDER BY seq LIMIT 50",
    )?;
    s.not_observed_rows = st
        .query_map([batch], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get(1)?,
                r.get::<_, i64>(2)? as u64,
                r.get(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(s))
}

/// One row of a Prolific batch's report: the row, its chunk's bulk id and Prolific's fees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProlificReportRow {
    pub line: u64,
    pub study: String,
    pub submission: String,
    pub participant: Option<String>,
    pub amount: Cents,
    pub reason: Option<String>,
    pub chunk: Option<u32>,
    pub bulk_id: Option<String>,
    /// The chunk's fees and VAT as Prolific answered them (minor units, exact).
    pub chunk_fees: Option<String>,
    pub chunk_vat: Option<String>,
    /// Where the row stands (the reading `payout status` counts by).
    pub state: RowOutcome,
    pub pay_sent_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub note: Option<String>,
}

/// Where a row of a chunked batch stands, read from its own state and its chunk's: the one
/// reading `payout status` counts by and `payout report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOutcome {
    Paid,
    /// In a chunk whose pay Prolific accepted; not yet visible on its submission.
    Accepted,
    /// In a chunk whose pay may have left without a proving answer.
    Unknown,
    NotObserved,
    Failed,
    Cancelled,
    /// Not in a chunk whose pay was sent: it will be set up (again) and paid.
    Pending,
}

impl RowOutcome {
    pub fn of(row: RowState, chunk: Option<ChunkState>) -> RowOutcome {
        match (row, chunk) {
            (RowState::Paid, _) => RowOutcome::Paid,
            (RowState::NotObserved, _) => RowOutcome::NotObserved,
            (RowState::Failed, _) => RowOutcome::Failed,
            (RowState::Cancelled, _) => RowOutcome::Cancelled,
            (RowState::Chunked, Some(ChunkState::Accepted)) => RowOutcome::Accepted,
            (RowState::Chunked, Some(c)) if c.awaits_observation() => RowOutcome::Unknown,
            _ => RowOutcome::Pending,
        }
    }

    /// The report's word.
    pub fn as_str(self) -> &'static str {
        match self {
            RowOutcome::Paid => "paid",
            RowOutcome::Accepted => "accepted, not yet visible",
            RowOutcome::Unknown => "unknown",
            RowOutcome::NotObserved => "not observed",
            RowOutcome::Failed => "failed",
            RowOutcome::Cancelled => "cancelled",
            RowOutcome::Pending => "pending",
        }
    }
}

/// Calls `f` with every row of a Prolific batch in plan order, read as it goes (any size).
pub fn for_each_report_row(
    conn: &Connection,
    batch: i64,
    mut f: impl FnMut(ProlificReportRow) -> Result<(), JournalError>,
) -> Result<u64, JournalError> {
    let mut st = conn.prepare(
        "SELECT r.line, r.study_id, r.submission_id, r.participant_id, r.amount_minor, r.reason,
                r.chunk, c.bulk_id, c.fees, c.vat, r.state, c.state, c.pay_sent_ms,
                r.finished_ms, r.note
         FROM chunk_rows r LEFT JOIN chunks c ON c.batch_id = r.batch_id AND c.chunk = r.chunk
         WHERE r.batch_id = ?1 ORDER BY r.seq",
    )?;
    let mut rows = st.query([batch])?;
    let mut n = 0u64;
    while let Some(r) = rows.next()? {
        let row_state: String = r.get(10)?;
        let chunk_state: Option<String> = r.get(11)?;
        let state = RowOutcome::of(
            RowState::parse(&row_state)
                .ok_or_else(|| corrupt(format!("row state {row_state:?}")))?,
            chunk_state.as_deref().and_then(ChunkState::parse),
        );
        f(ProlificReportRow {
            line: r.get::<_, i64>(0)? as u64,
            study: r.get(1)?,
            submission: r.get(2)?,
            participant: r.get(3)?,
            amount: Cents(r.get::<_, i64>(4)? as u64),
            reason: r.get(5)?,
            chunk: r.get::<_, Option<i64>>(6)?.map(|c| c as u32),
            bulk_id: r.get(7)?,
            chunk_fees: r.get(8)?,
            chunk_vat: r.get(9)?,
            state,
            pay_sent_ms: r.get(12)?,
            finished_ms: r.get(13)?,
            note: r.get(14)?,
        })?;
        n += 1;
    }
    Ok(n)
}

/// What a row not observed is shown with: when its pay was sent, what Prolific answered, what
/// its submission showed before, and the balance the run read before its first pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotObservedRow {
    pub line: u64,
    pub submission: SubmissionId,
    pub amount: Cents,
    pub bulk_id: Option<String>,
    pub pay_sent_ms: Option<i64>,
    pub answer: Option<String>,
    pub baseline: Option<Vec<ExactMinor>>,
    pub balance_before: Option<ExactMinor>,
}

/// The first `limit` rows of a batch that were not observed, in plan order.
pub fn not_observed_rows(
    conn: &Connection,
    batch: i64,
    limit: u32,
) -> Result<Vec<NotObservedRow>, JournalError> {
    let mut st = conn.prepare(
        "SELECT r.line, r.submission_id, r.amount_minor, c.bulk_id, c.pay_sent_ms, c.answer,
                r.baseline, c.balance_before
         FROM chunk_rows r JOIN chunks c ON c.batch_id = r.batch_id AND c.chunk = r.chunk
         WHERE r.batch_id = ?1 AND r.state = 'not_observed' ORDER BY r.seq LIMIT ?2",
    )?;
    let rows = st
        .query_map(params![batch, limit], |r| {
            let sub: String = r.get(1)?;
            let baseline: Option<String> = r.get(6)?;
            Ok(NotObservedRow {
                line: r.get::<_, i64>(0)? as u64,
                submission: SubmissionId::parse(&sub).map_err(|e| corrupt(e.to_string()))?,
                amount: Cents(r.get::<_, i64>(2)? as u64),
                bulk_id: r.get(3)?,
                pay_sent_ms: r.get(4)?,
                answer: r.get(5)?,
                baseline: baseline.as_deref().and_then(parse_baseline),
                balance_before: exact(r, 7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
