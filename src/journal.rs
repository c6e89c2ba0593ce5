//! The SQLite journal: batches, their payments and every attempt, durable before each call.
//!
//! Synchronous on purpose. During a run, one writer thread owns the connection and commits the
//! runner's writes in groups (one fsync for many intents), answering each write only once its
//! transaction is on disk: "durable before the call" holds for every single payment.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::ids::{AssignmentId, WorkerId};
use crate::money::Cents;
use crate::plan::{PaymentKey, Plan, Target, request_token};

/// Migrations, in order; the journal's `user_version` is how many have been applied.
const MIGRATIONS: &[&str] = &[include_str!("../schemas/journal/0001_init.sql")];

/// Writes queued before the writer commits them as one transaction.
const MAX_GROUP: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("failed to open the journal at {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another payout process is using the journal at {0}")]
    Locked(PathBuf),
    #[error(
        "the journal at {path} was written by a newer payout (schema {found}, this payout knows {known})"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("no journal at {0}")]
    Missing(PathBuf),
    #[error("journal database error")]
    Sql(#[from] rusqlite::Error),
    #[error("failed to write to the journal: {0}")]
    Write(String),
    #[error("the journal writer stopped")]
    WriterGone,
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemState {
    /// Not sent yet, or certainly not applied.
    Pending,
    /// Intent committed, call under way. Found at open, it becomes `Unknown`.
    InFlight,
    /// Sent, outcome not known: must be looked up before anything else is sent.
    Unknown,
    Paid,
    /// Refused by MTurk for this row; not retried.
    Failed,
    /// Not to be paid by this batch (already paid elsewhere in the journal).
    Skipped,
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::InFlight => "in_flight",
            ItemState::Unknown => "unknown",
            ItemState::Paid => "paid",
            ItemState::Failed => "failed",
            ItemState::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> ItemState {
        match s {
            "pending" => ItemState::Pending,
            "in_flight" => ItemState::InFlight,
            "unknown" => ItemState::Unknown,
            "paid" => ItemState::Paid,
            "failed" => ItemState::Failed,
            _ => ItemState::Skipped,
        }
    }

    /// Whether a run still has work to do for an item in this state.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ItemState::Pending | ItemState::InFlight | ItemState::Unknown
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    pub id: i64,
    pub name: String,
    pub fingerprint: String,
    pub target: Target,
    pub endpoint: Option<String>,
    pub source: String,
    pub created_ms: i64,
}

/// One payment as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    pub seq: u32,
    pub line: u64,
    pub key: PaymentKey,
    pub occurrence: u32,
    pub token: String,
    pub state: ItemState,
    pub attempts: u32,
    pub first_sent_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub error: Option<String>,
    pub note: Option<String>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An open journal. Holding it (outside read-only mode) holds the OS lock on the journal.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
    _lock: Option<File>,
}

impl Journal {
    /// Opens (creating if needed) the journal for writing, taking its lock for as long as the
    /// value lives. Payments left in flight by an interrupted run become `unknown`.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let open_err = |source| JournalError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(open_err)?;
        }
        let lock_path = sibling(path, ".lock");
        let lock = private_file(&lock_path).map_err(open_err)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked(path.to_owned()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(open_err(e)),
        }
        // Create the database file ourselves so that it is private (0600) from its first byte;
        // SQLite gives its -wal and -shm files the same permissions.
        private_file(path).map_err(open_err)?;
        let conn = Connection::open(path)?;
        let mut journal = Journal {
            conn,
            path: path.to_owned(),
            _lock: Some(lock),
        };
        journal.configure()?;
        journal.migrate()?;
        journal.conn.execute(
            "UPDATE items SET state = 'unknown', note = 'interrupted while the call was under way'
             WHERE state = 'in_flight'",
            [],
        )?;
        Ok(journal)
    }

    /// Opens an existing journal for reading only, without its lock (for `status`, `report`).
    pub fn open_read_only(path: &Path) -> Result<Journal, JournalError> {
        if !path.exists() {
            return Err(JournalError::Missing(path.to_owned()));
        }
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > MIGRATIONS.len() as i64 {
            return Err(JournalError::TooNew {
                path: path.to_owned(),
                found,
                known: MIGRATIONS.len() as i64,
            });
        }
        Ok(Journal {
            conn,
            path: path.to_owned(),
            _lock: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(&mut self) -> Result<(), JournalError> {
        // Money, not shell history: every commit reaches the disk before the call it precedes.
        self.conn.pragma_update(None, "journal_mode", "WAL")?;
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        self.conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(())
    }

    fn migrate(&mut self) -> Result<(), JournalError> {
        let found: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if found > known {
            return Err(JournalError::TooNew {
                path: self.path.clone(),
                found,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    pub fn batch_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<BatchInfo>, JournalError> {
        self.query_batch(
            "WHERE fingerprint = ?1 ORDER BY id DESC LIMIT 1",
            [fingerprint],
        )
    }

    pub fn batch_by_name(&self, name: &str) -> Result<Option<BatchInfo>, JournalError> {
        self.query_batch("WHERE name = ?1", [name])
    }

    /// The most recent batch, or the most recent one with open payments.
    pub fn latest_batch(&self, only_open: bool) -> Result<Option<BatchInfo>, JournalError> {
        let filter = if only_open {
            "WHERE EXISTS (SELECT 1 FROM items i WHERE i.batch_id = batches.id
               AND i.state IN ('pending', 'in_flight', 'unknown')) ORDER BY id DESC LIMIT 1"
        } else {
            "ORDER BY id DESC LIMIT 1"
        };
        self.query_batch(filter, [])
    }

    fn query_batch(
        &self,
        filter: &str,
        params: impl rusqlite::Params,
    ) -> Result<Option<BatchInfo>, JournalError> {
        let sql = format!(
            "SELECT id, name, fingerprint, target, endpoint, source, created_ms FROM batches {filter}"
        );
        Ok(self
            .conn
            .query_row(&sql, params, |r| {
                Ok(BatchInfo {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    fingerprint: r.get(2)?,
                    target: Target::parse(&r.get::<_, String>(3)?).unwrap_or(Target::Sandbox),
                    endpoint: r.get(4)?,
                    source: r.get(5)?,
                    created_ms: r.get(6)?,
                })
            })
            .optional()?)
    }

    /// Records a new batch and all its payments as `pending` (or `skipped` when the same payment
    /// was already paid by another batch on the same target), in one transaction.
    pub fn create_batch(
        &mut self,
        plan: &Plan,
        source: &str,
        endpoint: Option<&str>,
        allow_repeat: bool,
    ) -> Result<BatchInfo, JournalError> {
        let stem = Path::new(source)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "batch".into());
        let stem: String = stem
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        let tx = self.conn.transaction()?;
        let mut name = format!("{stem}-{}", &plan.fingerprint[..6]);
        let mut n = 2;
        while tx
            .query_row("SELECT 1 FROM batches WHERE name = ?1", [&name], |_| Ok(()))
            .optional()?
            .is_some()
        {
            name = format!("{stem}-{}-{n}", &plan.fingerprint[..6]);
            n += 1;
        }
        let created_ms = now_ms();
        tx.execute(
            "INSERT INTO batches (name, fingerprint, target, endpoint, source, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                name,
                plan.fingerprint,
                plan.target.as_str(),
                endpoint,
                source,
                created_ms
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut earlier = tx.prepare(
                "SELECT b.name, i.line, i.state, i.occurrence FROM items i JOIN batches b ON b.id = i.batch_id
                 WHERE b.target = ?1 AND b.endpoint IS ?7 AND i.worker_id = ?2 AND i.assignment_id = ?3
                   AND i.amount_cents = ?4 AND i.reason = ?5 AND i.batch_id != ?6 AND i.state != 'skipped'
                 ORDER BY i.batch_id, i.seq",
            )?;
            let mut insert = tx.prepare(
                "INSERT INTO items (batch_id, seq, line, worker_id, assignment_id, amount_cents,
                                    reason, occurrence, token, state, note)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for item in &plan.items {
                let k = &item.key;
                let prior: Vec<(String, i64, String, u32)> = earlier
                    .query_map(
                        params![
                            plan.target.as_str(),
                            k.worker.as_str(),
                            k.assignment.as_str(),
                            k.amount.0 as i64,
                            k.reason,
                            id,
                            endpoint
                        ],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )?
                    .collect::<Result<_, _>>()?;
                let paid: Vec<&(String, i64, String, u32)> =
                    prior.iter().filter(|p| p.2 == "paid").collect();
                let (occurrence, state, note) = if allow_repeat {
                    // A deliberate repeat needs a token MTurk has not seen for this payment.
                    let base = prior.iter().map(|p| p.3 + 1).max().unwrap_or(0);
                    (base + item.occurrence, ItemState::Pending, None)
                } else if let Some(p) = paid.get(item.occurrence as usize) {
                    (
                        item.occurrence,
                        ItemState::Skipped,
                        Some(format!(
                            "already paid in batch {} (line {}); --allow-repeat pays it again",
                            p.0, p.1
                        )),
                    )
                } else {
                    (item.occurrence, ItemState::Pending, None)
                };
                let token = request_token(plan.target, k, occurrence);
                insert.execute(params![
                    id,
                    item.seq,
                    item.line as i64,
                    k.worker.as_str(),
                    k.assignment.as_str(),
                    k.amount.0 as i64,
                    k.reason,
                    occurrence,
                    token,
                    state.as_str(),
                    note
                ])?;
            }
        }
        tx.commit()?;
        Ok(BatchInfo {
            id,
            name,
            fingerprint: plan.fingerprint.clone(),
            target: plan.target,
            endpoint: endpoint.map(str::to_owned),
            source: source.to_owned(),
            created_ms,
        })
    }

    /// Before a run: a payment whose token another batch has paid is skipped here; one whose
    /// token another batch left unknown must be looked up before it is sent.
    pub fn reconcile_with_other_batches(&mut self, batch: &BatchInfo) -> Result<(), JournalError> {
        let tx = self.conn.transaction()?;
        // "Other batches" means those paying into the same place: same target, same endpoint.
        tx.execute_batch(
            "CREATE TEMP VIEW IF NOT EXISTS payout_peers AS
             SELECT me.id AS batch_id, o.token, o.state, ob.name
             FROM batches me JOIN batches ob ON ob.target = me.target AND ob.endpoint IS me.endpoint
                             AND ob.id != me.id
                             JOIN items o ON o.batch_id = ob.id",
        )?;
        tx.execute(
            "UPDATE items SET state = 'skipped',
                note = 'paid by batch ' || (SELECT p.name FROM payout_peers p
                                             WHERE p.batch_id = ?1 AND p.token = items.token
                                               AND p.state = 'paid' LIMIT 1)
             WHERE batch_id = ?1 AND state IN ('pending', 'unknown')
               AND EXISTS (SELECT 1 FROM payout_peers p WHERE p.batch_id = ?1
                           AND p.token = items.token AND p.state = 'paid')",
            [batch.id],
        )?;
        tx.execute(
            "UPDATE items SET state = 'unknown', note = 'another batch sent the same payment without an answer'
             WHERE batch_id = ?1 AND state = 'pending'
               AND EXISTS (SELECT 1 FROM payout_peers p WHERE p.batch_id = ?1
                           AND p.token = items.token AND p.state IN ('unknown', 'in_flight'))",
            [batch.id],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn items(&self, batch_id: i64) -> Result<Vec<ItemRecord>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, line, worker_id, assignment_id, amount_cents, reason, occurrence, token,
                    state, attempts, first_sent_ms, finished_ms, error, note
             FROM items WHERE batch_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([batch_id], |r| {
            let worker: String = r.get(2)?;
            let assignment: String = r.get(3)?;
            Ok(ItemRecord {
                seq: r.get(0)?,
                line: r.get::<_, i64>(1)? as u64,
                key: PaymentKey {
                    worker: WorkerId::parse(&worker).map_err(|e| bad_column(2, e))?,
                    assignment: AssignmentId::parse(&assignment).map_err(|e| bad_column(3, e))?,
                    amount: Cents(r.get::<_, i64>(4)? as u64),
                    reason: r.get(5)?,
                },
                occurrence: r.get(6)?,
                token: r.get(7)?,
                state: ItemState::parse(&r.get::<_, String>(8)?),
                attempts: r.get(9)?,
                first_sent_ms: r.get(10)?,
                finished_ms: r.get(11)?,
                error: r.get(12)?,
                note: r.get(13)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Hands the connection to a writer thread for the duration of a run.
    pub fn into_writer(self) -> JournalWriter {
        let (tx, rx) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("payout-journal".into())
            .spawn(move || {
                let mut journal = self;
                writer_loop(&mut journal.conn, rx);
                journal
            })
            .expect("spawn the journal writer thread");
        JournalWriter {
            tx: Some(tx),
            thread: Some(thread),
        }
    }
}

fn bad_column(idx: usize, e: crate::ids::IdError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn private_file(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

/// What the runner writes during a run.
#[derive(Debug, Clone)]
pub enum Write {
    /// Intent: the attempt is about to be sent.
    BeginAttempt { batch: i64, seq: u32 },
    /// Outcome of attempt `n`, and the item's new state.
    EndAttempt {
        batch: i64,
        seq: u32,
        n: u32,
        outcome: &'static str,
        message: Option<String>,
        state: ItemState,
        note: Option<String>,
    },
    /// An outcome established without sending (a lookup).
    Resolve {
        batch: i64,
        seq: u32,
        state: ItemState,
        note: String,
    },
}

/// Replies: the attempt number for `BeginAttempt`, 0 otherwise.
type Reply = oneshot::Sender<Result<u32, String>>;

enum Request {
    Write(Write, Reply),
    /// How many payments to this worker, for this assignment, of this amount (under another
    /// token) the journal holds as paid where `batch` pays (same target and endpoint). The reason is left out on purpose: a
    /// lookup compares against MTurk's list, whose copy of the reason we cannot vouch for.
    CountPaidOthers {
        batch: i64,
        key: PaymentKey,
        token: String,
        reply: oneshot::Sender<Result<u64, String>>,
    },
}

/// The runner's handle on the journal during a run.
pub struct JournalWriter {
    tx: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<Journal>>,
}

impl JournalWriter {
    /// Applies `w` and returns once it is committed to disk.
    pub async fn write(&self, w: Write) -> Result<u32, JournalError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or(JournalError::WriterGone)?
            .send(Request::Write(w, reply))
            .map_err(|_| JournalError::WriterGone)?;
        rx.await
            .map_err(|_| JournalError::WriterGone)?
            .map_err(JournalError::Write)
    }

    pub async fn count_paid_others(
        &self,
        batch: i64,
        key: &PaymentKey,
        token: &str,
    ) -> Result<u64, JournalError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or(JournalError::WriterGone)?
            .send(Request::CountPaidOthers {
                batch,
                key: key.clone(),
                token: token.to_owned(),
                reply,
            })
            .map_err(|_| JournalError::WriterGone)?;
        rx.await
            .map_err(|_| JournalError::WriterGone)?
            .map_err(JournalError::Write)
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

fn writer_loop(conn: &mut Connection, rx: mpsc::Receiver<Request>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        let mut replies: Vec<(Reply, Result<u32, String>)> = Vec::with_capacity(group.len());
        let committed = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for req in group {
                match req {
                    Request::Write(w, reply) => {
                        let r = apply(&tx, &w).map_err(|e| e.to_string());
                        replies.push((reply, r));
                    }
                    Request::CountPaidOthers {
                        batch,
                        key,
                        token,
                        reply,
                    } => {
                        let _ = reply.send(
                            count_paid_others(&tx, batch, &key, &token).map_err(|e| e.to_string()),
                        );
                    }
                }
            }
            tx.commit()
        })();
        for (reply, r) in replies {
            // A write is acknowledged only if its transaction reached the disk.
            let r = match &committed {
                Ok(()) => r,
                Err(e) => Err(format!("commit failed: {e}")),
            };
            let _ = reply.send(r);
        }
    }
}

fn apply(tx: &rusqlite::Transaction<'_>, w: &Write) -> rusqlite::Result<u32> {
    let now = now_ms();
    match w {
        Write::BeginAttempt { batch, seq } => {
            let n: u32 = tx.query_row(
                "UPDATE items SET state = 'in_flight', attempts = attempts + 1,
                        first_sent_ms = COALESCE(first_sent_ms, ?3), last_sent_ms = ?3
                 WHERE batch_id = ?1 AND seq = ?2 RETURNING attempts",
                params![batch, seq, now],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO attempts (batch_id, seq, n, sent_ms) VALUES (?1, ?2, ?3, ?4)",
                params![batch, seq, n, now],
            )?;
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
            tx.execute(
                "UPDATE attempts SET done_ms = ?4, outcome = ?5, message = ?6
                 WHERE batch_id = ?1 AND seq = ?2 AND n = ?3",
                params![batch, seq, n, now, outcome, message],
            )?;
            let finished = (!state.is_open()).then_some(now);
            tx.execute(
                "UPDATE items SET state = ?3, note = COALESCE(?5, note), finished_ms = ?6,
                        -- The last error stays while it matters; a payment made clears it (every
                        -- attempt's message stays in `attempts`).
                        error = CASE WHEN ?3 = 'paid' THEN NULL ELSE COALESCE(?4, error) END
                 WHERE batch_id = ?1 AND seq = ?2",
                params![batch, seq, state.as_str(), message, note, finished],
            )?;
            Ok(0)
        }
        Write::Resolve {
            batch,
            seq,
            state,
            note,
        } => {
            let finished = (!state.is_open()).then_some(now);
            tx.execute(
                "UPDATE items SET state = ?3, note = ?4, finished_ms = ?5 WHERE batch_id = ?1 AND seq = ?2",
                params![batch, seq, state.as_str(), note, finished],
            )?;
            Ok(0)
        }
    }
}

fn count_paid_others(
    tx: &rusqlite::Transaction<'_>,
    batch: i64,
    key: &PaymentKey,
    token: &str,
) -> rusqlite::Result<u64> {
    tx.query_row(
        "SELECT COUNT(*) FROM batches me JOIN batches b ON b.target = me.target AND b.endpoint IS me.endpoint
                                         JOIN items i ON i.batch_id = b.id
         WHERE me.id = ?1 AND i.worker_id = ?2 AND i.assignment_id = ?3 AND i.amount_cents = ?4
           AND i.token != ?5 AND i.state = 'paid'",
        params![
            batch,
            key.worker.as_str(),
            key.assignment.as_str(),
            key.amount.0 as i64,
            token
        ],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::BonusRow;
    use crate::plan::plan;

    fn rows(n: u64) -> Vec<BonusRow> {
        (0..n)
            .map(|i| BonusRow {
                line: i + 2,
                worker: WorkerId::parse(&format!("A{i}")).unwrap(),
                assignment: AssignmentId::parse(&format!("X{i}")).unwrap(),
                amount: Cents(100 + i),
                reason: "thanks".into(),
            })
            .collect()
    }

    #[test]
    fn second_open_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let _first = Journal::open(&path).unwrap();
        assert!(matches!(Journal::open(&path), Err(JournalError::Locked(_))));
    }

    #[test]
    fn journal_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/j.sqlite");
        let _j = Journal::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        drop(Journal::open(&path).unwrap());
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            Journal::open(&path),
            Err(JournalError::TooNew { found: 99, .. })
        ));
    }

    #[tokio::test]
    async fn in_flight_becomes_unknown_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let p = plan(&rows(3), Target::Emulator, "");
        let mut j = Journal::open(&path).unwrap();
        let b = j.create_batch(&p, "b.csv", None, false).unwrap();
        let w = j.into_writer();
        let n = w
            .write(Write::BeginAttempt {
                batch: b.id,
                seq: 1,
            })
            .await
            .unwrap();
        assert_eq!(n, 1);
        drop(w.finish());
        let j = Journal::open(&path).unwrap();
        let states: Vec<ItemState> = j.items(b.id).unwrap().iter().map(|i| i.state).collect();
        assert_eq!(
            states,
            vec![ItemState::Pending, ItemState::Unknown, ItemState::Pending]
        );
    }

    #[tokio::test]
    async fn a_payment_made_by_an_earlier_batch_is_skipped_unless_repeat_is_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let mut j = Journal::open(&path).unwrap();
        let first = j
            .create_batch(&plan(&rows(2), Target::Emulator, ""), "a.csv", None, false)
            .unwrap();
        let w = j.into_writer();
        w.write(Write::Resolve {
            batch: first.id,
            seq: 0,
            state: ItemState::Paid,
            note: "test".into(),
        })
        .await
        .unwrap();
        let mut j = w.finish();
        let second = j
            .create_batch(&plan(&rows(3), Target::Emulator, ""), "b.csv", None, false)
            .unwrap();
        let items = j.items(second.id).unwrap();
        assert_eq!(items[0].state, ItemState::Skipped);
        assert!(items[0].note.as_deref().unwrap().contains("a-"));
        assert_eq!(items[1].state, ItemState::Pending);
        // Row 1 is still pending in the first batch: same token, so the runs share MTurk's dedup.
        assert_eq!(items[1].token, j.items(first.id).unwrap()[1].token);

        let third = j
            .create_batch(
                &plan(&rows(1), Target::Emulator, "repeat"),
                "c.csv",
                None,
                true,
            )
            .unwrap();
        let repeat = &j.items(third.id).unwrap()[0];
        assert_eq!(repeat.state, ItemState::Pending);
        assert_ne!(repeat.token, items[0].token);
        // Another target is another world.
        let sandbox = j
            .create_batch(&plan(&rows(1), Target::Sandbox, ""), "a.csv", None, false)
            .unwrap();
        assert_eq!(j.items(sandbox.id).unwrap()[0].state, ItemState::Pending);
        // And so is another endpoint: an emulator reached with --endpoint-url is not the target.
        let elsewhere = j
            .create_batch(
                &plan(&rows(1), Target::Emulator, "endpoint"),
                "a.csv",
                Some("http://127.0.0.1:9"),
                false,
            )
            .unwrap();
        assert_eq!(j.items(elsewhere.id).unwrap()[0].state, ItemState::Pending);
    }

    #[tokio::test]
    async fn reconcile_skips_tokens_paid_elsewhere_and_flags_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let mut j = Journal::open(&path).unwrap();
        let a = j
            .create_batch(&plan(&rows(2), Target::Emulator, ""), "a.csv", None, false)
            .unwrap();
        let b = j
            .create_batch(&plan(&rows(3), Target::Emulator, ""), "b.csv", None, false)
            .unwrap();
        let w = j.into_writer();
        w.write(Write::Resolve {
            batch: a.id,
            seq: 0,
            state: ItemState::Paid,
            note: "t".into(),
        })
        .await
        .unwrap();
        w.write(Write::BeginAttempt {
            batch: a.id,
            seq: 1,
        })
        .await
        .unwrap();
        let mut j = w.finish();
        j.reconcile_with_other_batches(&b).unwrap();
        let states: Vec<ItemState> = j.items(b.id).unwrap().iter().map(|i| i.state).collect();
        assert_eq!(
            states,
            vec![ItemState::Skipped, ItemState::Unknown, ItemState::Pending]
        );
    }

    #[tokio::test]
    async fn writes_are_grouped_and_all_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let mut j = Journal::open(&path).unwrap();
        let b = j
            .create_batch(
                &plan(&rows(200), Target::Emulator, ""),
                "a.csv",
                None,
                false,
            )
            .unwrap();
        let w = std::sync::Arc::new(j.into_writer());
        let mut tasks = Vec::new();
        for seq in 0..200u32 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                let n = w
                    .write(Write::BeginAttempt { batch: b.id, seq })
                    .await
                    .unwrap();
                w.write(Write::EndAttempt {
                    batch: b.id,
                    seq,
                    n,
                    outcome: "ok",
                    message: None,
                    state: ItemState::Paid,
                    note: None,
                })
                .await
                .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let j = std::sync::Arc::try_unwrap(w).ok().unwrap().finish();
        let items = j.items(b.id).unwrap();
        assert_eq!(items.len(), 200);
        assert!(
            items
                .iter()
                .all(|i| i.state == ItemState::Paid && i.attempts == 1)
        );
        let attempts: i64 = j
            .conn
            .query_row(
                "SELECT COUNT(*) FROM attempts WHERE outcome = 'ok'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(attempts, 200);
    }
}
