//! The run-time journal: one thread owns the connection, commits concurrent writes in groups
//! (one fsync for many), and acknowledges each write only once its group is on disk and the
//! journal is still the file at its path. Reads during a run go through the same thread.

use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::{Connection, Transaction, params};
use tokio::sync::oneshot;

use super::records::{CloseKind, ItemState};
use super::{Journal, JournalError, now_ms};

/// Requests queued before the writer commits them as one transaction.
const MAX_GROUP: usize = 512;

/// Every change the engine makes to the journal.
#[derive(Debug, Clone)]
pub enum Write {
    /// Intent: the attempt is about to be sent. Answers the attempt's number.
    BeginAttempt { batch: i64, seq: u32 },
    /// Outcome of attempt `n`, and the item's new state. `note` replaces the item's note: it
    /// always says how the latest outcome came about.
    EndAttempt {
        batch: i64,
        seq: u32,
        n: u32,
        outcome: &'static str,
        message: Option<String>,
        state: ItemState,
        note: Option<String>,
    },
    /// An outcome established without sending (by verification, or a skip).
    Resolve {
        batch: i64,
        seq: u32,
        state: ItemState,
        note: String,
    },
    /// A qualification type name resolved (or a creation about to be sent).
    QualType {
        ledger: String,
        name: String,
        type_id: Option<String>,
        state: super::QualTypeState,
        batch: i64,
    },
    /// A run of `batch` starts. Answers the run's id.
    RunStart { batch: i64 },
    RunEnd {
        run: i64,
        outcome: String,
        pace: f64,
        limit: Option<f64>,
    },
    /// Closes a batch: its pending items become cancelled. Refused while any is unknown.
    Close {
        batch: i64,
        how: CloseKind,
        by: Option<i64>,
    },
    /// A step of a chunked batch (Prolific): see [`super::chunks::ChunkWrite`].
    Chunk(super::chunks::ChunkWrite),
    /// A step of a participant-group batch: see [`super::members::MemberWrite`].
    Members(super::members::MemberWrite),
    /// A production dry run whose preflight passed.
    Rehearsal {
        content_digest: String,
        ledger: String,
        source: String,
        /// A preflight of only the first operations: (checked, of how many).
        checked: Option<(u64, u64)>,
    },
}

/// Applies one write inside `tx`; answers the attempt number, run id, or 0. The writes made for
/// every call (an attempt's start and end, a resolution) use cached statements: parsing their
/// SQL again for each write was a sixth of a fast run's CPU.
pub(super) fn apply(tx: &Transaction<'_>, w: &Write) -> Result<i64, JournalError> {
    let now = now_ms();
    match w {
        Write::Chunk(c) => super::chunks::apply(tx, c),
        Write::Members(m) => super::members::apply(tx, m),
        Write::BeginAttempt { batch, seq } => {
            let n: i64 = tx
                .prepare_cached(
                    "UPDATE items SET state = 'in_flight', attempts = attempts + 1,
                        first_sent_ms = COALESCE(first_sent_ms, ?3), last_sent_ms = ?3
                 WHERE batch_id = ?1 AND seq = ?2 RETURNING attempts",
                )?
                .query_row(params![batch, seq, now], |r| r.get(0))?;
            tx.prepare_cached(
                "INSERT INTO attempts (batch_id, seq, n, sent_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![batch, seq, n, now])?;
            Ok(n)
        }
        Write::EndAttempt {
            batch,
            seq,
            n,
            outcome,
            message,
            state,
            note,
        } => {
            tx.prepare_cached(
                "UPDATE attempts SET done_ms = ?4, outcome = ?5, message = ?6
                 WHERE batch_id = ?1 AND seq = ?2 AND n = ?3",
            )?
            .execute(params![batch, seq, n, now, outcome, message])?;
            let finished = (!state.is_open()).then_some(now);
            tx.prepare_cached(
                "UPDATE items SET state = ?3, note = ?5, finished_ms = ?6,
                        -- The last error stays while it matters; an operation done clears it
                        -- (every attempt's message stays in `attempts`).
                        error = CASE WHEN ?3 = 'done' THEN NULL ELSE COALESCE(?4, error) END
                 WHERE batch_id = ?1 AND seq = ?2",
            )?
            .execute(params![batch, seq, state.as_str(), message, note, finished])?;
            Ok(0)
        }
        Write::Resolve {
            batch,
            seq,
            state,
            note,
        } => {
            let finished = (!state.is_open()).then_some(now);
            tx.prepare_cached(
                "UPDATE items SET state = ?3, note = ?4, finished_ms = ?5,
                        error = CASE WHEN ?3 = 'done' THEN NULL ELSE error END
                 WHERE batch_id = ?1 AND seq = ?2",
            )?
            .execute(params![batch, seq, state.as_str(), note, finished])?;
            Ok(0)
        }
        Write::QualType {
            ledger,
            name,
            type_id,
            state,
            batch,
        } => {
            tx.execute(
                "INSERT INTO qualification_types (ledger, name, type_id, state, batch_id, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (ledger, name) DO UPDATE SET type_id = excluded.type_id,
                     state = excluded.state, updated_ms = excluded.updated_ms",
                params![ledger, name, type_id, state.as_str(), batch, now],
            )?;
            Ok(0)
        }
        Write::RunStart { batch } => {
            tx.execute(
                "INSERT INTO runs (batch_id, started_ms) VALUES (?1, ?2)",
                params![batch, now],
            )?;
            Ok(tx.last_insert_rowid())
        }
        Write::RunEnd {
            run,
            outcome,
            pace,
            limit,
        } => {
            tx.execute(
                "UPDATE runs SET ended_ms = ?2, outcome = ?3, pace = ?4, limit_estimate = ?5
                 WHERE id = ?1",
                params![run, now, outcome, pace, limit],
            )?;
            Ok(0)
        }
        Write::Close { batch, how, by } => {
            let unknown: i64 = tx.query_row(
                "SELECT COUNT(*) FROM items WHERE batch_id = ?1 AND state IN ('unknown', 'in_flight')",
                [batch],
                |r| r.get(0),
            )?;
            if unknown > 0 {
                return Err(JournalError::Write(format!(
                    "{unknown} operations of the batch may have been applied and could not be verified; it cannot be closed yet"
                )));
            }
            let note = match how {
                CloseKind::Cancelled => "the batch was cancelled".to_owned(),
                CloseKind::Superseded => "a newer batch superseded this one".to_owned(),
            };
            tx.execute(
                "UPDATE items SET state = 'cancelled', note = ?2, finished_ms = ?3
                 WHERE batch_id = ?1 AND state = 'pending'",
                params![batch, note, now],
            )?;
            tx.execute(
                "UPDATE batches SET closed = ?2, closed_by = ?3, closed_ms = ?4 WHERE id = ?1",
                params![batch, how.as_str(), by, now],
            )?;
            Ok(0)
        }
        Write::Rehearsal {
            content_digest,
            ledger,
            source,
            checked,
        } => {
            tx.execute(
                "INSERT INTO rehearsals (content_digest, ledger, how, source, recorded_ms)
                 VALUES (?1, ?2, ?5, ?3, ?4)",
                params![
                    content_digest,
                    ledger,
                    source,
                    now,
                    super::query::Rehearsal::preflight_how(*checked)
                ],
            )?;
            Ok(0)
        }
    }
}

type Reply = oneshot::Sender<Result<i64, String>>;
type ReadFn = Box<dyn FnOnce(&Connection) + Send>;

enum Request {
    Write(Write, Reply),
    Read(ReadFn),
}

/// The engine's handle on the journal during a run.
pub struct JournalWriter {
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<Journal>>,
}

pub(super) fn start(journal: Journal) -> JournalWriter {
    let (tx, rx) = mpsc::channel::<Request>();
    let thread = std::thread::Builder::new()
        .name("payout-journal".into())
        .spawn(move || {
            let mut journal = journal;
            writer_loop(&mut journal, rx);
            journal
        })
        .expect("spawn the journal writer thread");
    JournalWriter {
        tx: Some(tx),
        thread: Some(thread),
    }
}

impl JournalWriter {
    fn send(&self, r: Request) -> Result<(), JournalError> {
        self.tx
            .as_ref()
            .ok_or(JournalError::WriterGone)?
            .send(r)
            .map_err(|_| JournalError::WriterGone)
    }

    /// Applies `w` and returns once it is committed to disk (the attempt number for
    /// `BeginAttempt`, the run id for `RunStart`).
    pub async fn write(&self, w: Write) -> Result<i64, JournalError> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Write(w, reply))?;
        rx.await
            .map_err(|_| JournalError::WriterGone)?
            .map_err(JournalError::Write)
    }

    /// Runs a query on the writer's connection, after every write queued before it.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, JournalError> + Send + 'static,
    ) -> Result<T, JournalError> {
        let (reply, rx) = oneshot::channel();
        self.send(Request::Read(Box::new(move |conn| {
            let _ = reply.send(f(conn));
        })))?;
        rx.await.map_err(|_| JournalError::WriterGone)?
    }

    /// Stops the writer after every queued write and gives the journal back.
    pub fn finish(mut self) -> Journal {
        self.tx.take();
        self.thread
            .take()
            .expect("finish is called once")
            .join()
            .expect("the journal writer thread does not panic")
    }
}

fn writer_loop(journal: &mut Journal, rx: mpsc::Receiver<Request>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let mut replies: Vec<(Reply, Result<i64, String>)> = Vec::with_capacity(group.len());
        let committed = (|| -> Result<(), JournalError> {
            let tx = journal.conn_mut().transaction()?;
            for req in group {
                match req {
                    Request::Write(w, reply) => {
                        let r = apply(&tx, &w).map_err(|e| crate::error::chain(&e));
                        replies.push((reply, r));
                    }
                    Request::Read(f) => f(&tx),
                }
            }
            tx.commit()?;
            // A write is on disk only if the file is still the journal: one deleted or replaced
            // while the run goes on would take this run's record with it.
            journal.check_file()
        })();
        for (reply, r) in replies {
            let r = match &committed {
                Ok(()) => r,
                Err(e) => Err(crate::error::chain(e)),
            };
            let _ = reply.send(r);
        }
    }
}
