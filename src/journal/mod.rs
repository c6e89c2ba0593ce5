//! The SQLite journal: batches, their operations and every attempt, durable before each call.
//!
//! Synchronous on purpose. The journal stores and answers; it never plans (that is `plan`) and
//! never decides what an answer from the platform means (that is `engine`). During a run one
//! writer thread owns the connection and commits the engine's writes in groups, answering each
//! write only once its transaction is on disk and the file is still the journal at its path.

pub mod chunks;
pub mod members;
mod migrate;
pub(crate) mod query;
mod records;
mod writer;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};

use chunks::CHUNK_ROW_OPEN_STATES;
use members::MEMBER_OPEN_STATES;

pub use query::{
    BULK_IMPORT_ROWS, GroupItem, Import, ItemFilter, KindStateCount, LedgerPrior, PriorItem,
    Rehearsal,
};
pub use records::{
    BatchInfo, BatchKind, BatchOptions, CloseKind, Closed, ItemRecord, ItemState, NewBatch,
    QualTypeRecord, QualTypeState,
};
pub(crate) use records::{OPEN_STATES, UNSETTLED_STATES};
pub use writer::{JournalWriter, Write};

/// Migrations, in order; the journal's `user_version` is how many have been applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../schemas/journal/0001_init.sql"),
    include_str!("../../schemas/journal/0002_operations.sql"),
    include_str!("../../schemas/journal/0003_imports.sql"),
    include_str!("../../schemas/journal/0004_chunks.sql"),
    include_str!("../../schemas/journal/0005_evidence.sql"),
    include_str!("../../schemas/journal/0006_groups.sql"),
];

/// Marks a SQLite file as a payout journal (`PRAGMA application_id`): "payo".
const APPLICATION_ID: i64 = 0x7061_796f;

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
    #[error("{0} is not a payout journal (it is another SQLite database or another kind of file)")]
    NotAJournal(PathBuf),
    #[error("no journal at {0}")]
    Missing(PathBuf),
    #[error(
        "the journal at {0} was deleted or replaced while payout was using it; what this run did since then is recorded only in the lost file"
    )]
    Replaced(PathBuf),
    #[error("journal database error")]
    Sql(#[from] rusqlite::Error),
    #[error("failed to write to the journal: {0}")]
    Write(String),
    #[error("the journal writer stopped")]
    WriterGone,
}

/// What a journal error means to the user, and the step that fixes it.
impl From<JournalError> for crate::error::Failure {
    fn from(e: JournalError) -> crate::error::Failure {
        use crate::error::{Failure, FailureKind};
        use JournalError as J;
        let kind = match &e {
            J::Locked(_) => FailureKind::JournalLocked,
            J::TooNew { .. } => FailureKind::JournalTooNew,
            J::NotAJournal(_) => FailureKind::NotAJournal,
            _ => FailureKind::Journal,
        };
        let fix = match &e {
            J::Locked(_) => Some(
                "Wait for the other payout to finish (or stop it), then run this again.".into(),
            ),
            J::TooNew { .. } => Some("Upgrade payout to read this journal.".into()),
            J::NotAJournal(_) => Some(
                "Give payout a journal of its own with --journal PATH (or PAYOUT_JOURNAL); it never adds its tables to another file.".into(),
            ),
            J::Missing(_) => Some("Run `payout run FILE.csv` first, or pass --journal PATH.".into()),
            J::Replaced(_) => Some(
                "Put the journal file back if you can, then run the same command again: payout verifies with the platform what this run sent before sending anything again.".into(),
            ),
            _ => None,
        };
        let mut message = match &e {
            J::Locked(p) => format!("another payout is running on the journal {}", p.display()),
            _ => crate::error::chain(&e),
        };
        let mut fix = fix;
        // SQLite's words alone do not say what happened to the batch, nor what to do.
        match storage_trouble(&e) {
            Some(Trouble::Full) => {
                message = format!(
                    "the journal could not be written: the disk holding it is full or failing ({message}); every operation recorded before this is kept, and none was sent without being recorded first"
                );
                fix = Some("Free space on that disk (or move the journal with --journal PATH), then run the same command again: what was sent without an answer is verified with the platform before anything is sent again.".into());
            }
            Some(Trouble::Damaged) => {
                message = format!(
                    "the journal is damaged ({message}); payout stopped before sending anything more"
                );
                fix = Some("Keep a copy of the journal and its -wal file before anything else; `sqlite3 JOURNAL .recover` saves what is readable, and `payout doctor` checks it. Do not run a batch on a journal that fails that check.".into());
            }
            None => {}
        }
        Failure { kind, message, fix }
    }
}

/// What a journal error says about the storage under the journal.
enum Trouble {
    /// Out of space, or a write the disk refused.
    Full,
    /// The file is not the database SQLite wrote.
    Damaged,
}

fn storage_trouble(e: &JournalError) -> Option<Trouble> {
    use JournalError as J;
    use rusqlite::ErrorCode as C;
    let code = match e {
        J::Sql(s) => s.sqlite_error_code(),
        _ => None,
    };
    // During a run the writer thread hands its error over as text.
    let text = crate::error::chain(e).to_ascii_lowercase();
    match code {
        Some(C::DiskFull | C::SystemIoFailure) => Some(Trouble::Full),
        Some(C::DatabaseCorrupt) => Some(Trouble::Damaged),
        _ if text.contains("disk is full") || text.contains("disk i/o error") => {
            Some(Trouble::Full)
        }
        _ if text.contains("malformed") => Some(Trouble::Damaged),
        _ => None,
    }
}

impl From<JournalError> for crate::item::PriorError {
    fn from(e: JournalError) -> Self {
        crate::item::PriorError(Box::new(e))
    }
}

/// What the planner could not learn from the journal is the journal's own error, given back.
impl From<crate::item::PriorError> for JournalError {
    fn from(e: crate::item::PriorError) -> Self {
        match e.0.downcast::<JournalError>() {
            Ok(j) => *j,
            Err(other) => JournalError::Write(other.to_string()),
        }
    }
}

/// Milliseconds since the epoch as RFC 3339 (`2026-11-23T01:58:43Z`).
pub fn rfc3339(ms: Option<i64>) -> String {
    use aws_sdk_mturk::primitives::{DateTime, DateTimeFormat};
    ms.and_then(|ms| DateTime::from_millis(ms).fmt(DateTimeFormat::DateTime).ok())
        .unwrap_or_default()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A batch whose import began and has not finished: under way, or interrupted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfinishedImport {
    pub id: i64,
    pub name: String,
    /// The file being imported, as the run named it.
    pub source: String,
    pub created_ms: i64,
}

/// The file a journal was opened as: a path can be made to point elsewhere while it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// The open journal file that holds the OS lock, and what it must stay to be trusted.
struct Guard {
    file: File,
    path: PathBuf,
    id: FileId,
}

impl Guard {
    /// Fails when the journal file was deleted, or the path now leads to another file: writes
    /// would go to a file nobody will ever read again.
    fn check(&self) -> Result<(), JournalError> {
        use std::os::unix::fs::MetadataExt;
        let replaced = || JournalError::Replaced(self.path.clone());
        let ours = self.file.metadata().map_err(|_| replaced())?;
        if ours.nlink() == 0 {
            return Err(replaced());
        }
        match std::fs::metadata(&self.path) {
            Ok(now) if FileId::of(&now) == self.id => Ok(()),
            _ => Err(replaced()),
        }
    }
}

/// An open journal. Holding it (outside read-only mode) holds the OS lock on the journal file.
pub struct Journal {
    // Field order matters: the connection closes before the locked file does.
    conn: Connection,
    path: PathBuf,
    guard: Option<Guard>,
    warnings: Vec<String>,
}

impl Journal {
    /// Opens (creating if needed) the journal for writing, taking its lock for as long as the
    /// value lives. Operations left in flight by an interrupted run become `unknown`.
    ///
    /// The lock is on the journal file itself, so a second payout reaching it by another path
    /// (a symlink, a hard link) is refused too.
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        Journal::open_with(path, true)
    }

    /// [`Journal::open`], leaving a batch whose import was interrupted in place, so that the
    /// caller can say so (`payout resume`); [`Journal::drop_unfinished_imports`] removes it.
    pub fn open_keeping_imports(path: &Path) -> Result<Journal, JournalError> {
        Journal::open_with(path, false)
    }

    fn open_with(path: &Path, drop_imports: bool) -> Result<Journal, JournalError> {
        let open_err = |source| JournalError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(open_err)?;
        }
        // Create the database file ourselves so that it is private (0600) from its first byte;
        // SQLite gives its -wal and -shm files the same permissions.
        let file = private_file(path).map_err(open_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked(path.to_owned()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(open_err(e)),
        }
        let meta = file.metadata().map_err(open_err)?;
        let mut warnings = Vec::new();
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(open_err)?;
                warnings.push(format!(
                    "the journal {} was readable by others (mode {mode:o}); payout made it private (0600)",
                    path.display()
                ));
            }
        }
        let guard = Guard {
            id: FileId::of(&meta),
            file,
            path: path.to_owned(),
        };
        let conn = Connection::open(path)?;
        let mut journal = Journal {
            conn,
            path: path.to_owned(),
            guard: Some(guard),
            warnings,
        };
        journal.check_is_journal()?;
        journal.configure()?;
        journal.migrate()?;
        journal.conn.execute(
            &format!(
                "UPDATE items INDEXED BY items_unsettled
                 SET state = 'unknown', note = 'interrupted while the call was under way'
                 WHERE state IN {UNSETTLED_STATES} AND state = 'in_flight'"
            ),
            [],
        )?;
        if drop_imports {
            for gone in journal.drop_unfinished_imports()? {
                journal.warnings.push(format!(
                    "an earlier run was interrupted while importing {} (batch {}); nothing of it was sent, and what it had recorded was removed",
                    gone.source, gone.name
                ));
            }
        }
        Ok(journal)
    }

    /// Batches whose import began and did not finish, oldest first. Each was recorded in its
    /// own transaction before its items were, so it outlives an import cut short — and its
    /// items, imported in one transaction with the mark that ends the import, never do.
    pub fn unfinished_imports(&self) -> Result<Vec<UnfinishedImport>, JournalError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, source, created_ms FROM batches WHERE imported = 0 ORDER BY id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(UnfinishedImport {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    source: r.get(2)?,
                    created_ms: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Removes every batch whose import was interrupted (it never ran: nothing of it was
    /// sent) and says which they were. Only with the lock: another payout may be importing.
    pub fn drop_unfinished_imports(&mut self) -> Result<Vec<UnfinishedImport>, JournalError> {
        let gone = self.unfinished_imports()?;
        if gone.is_empty() {
            return Ok(gone);
        }
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM items WHERE batch_id IN (SELECT id FROM batches WHERE imported = 0)",
            [],
        )?;
        tx.execute("DELETE FROM batches WHERE imported = 0", [])?;
        tx.commit()?;
        self.check_file()?;
        Ok(gone)
    }

    /// Removes `batch` if its import has not finished: an import that stopped cleanly (a
    /// signal, a file that changed, a write that failed) leaves the journal as it was.
    pub fn abandon_import(&mut self, batch: i64) -> Result<(), JournalError> {
        let tx = self.conn.transaction()?;
        let unfinished: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM batches WHERE id = ?1 AND imported = 0)",
            [batch],
            |r| r.get(0),
        )?;
        if unfinished {
            tx.execute("DELETE FROM items WHERE batch_id = ?1", [batch])?;
            tx.execute("DELETE FROM batches WHERE id = ?1", [batch])?;
        }
        tx.commit()?;
        self.check_file()
    }

    /// Batches not closed whose import finished and that still have operations open (of any
    /// platform and kind: items, Prolific's bonus rows, group changes), oldest first, with how
    /// many are open: the work `payout resume` would do.
    pub fn unfinished_batches(&self) -> Result<Vec<(BatchInfo, u64)>, JournalError> {
        let ids: Vec<(i64, i64)> = {
            let mut stmt = self.conn.prepare(&format!(
                "SELECT b.id, (SELECT COUNT(*) FROM items i INDEXED BY items_open
                               WHERE i.batch_id = b.id
                               AND i.state IN {OPEN_STATES})
                             + (SELECT COUNT(*) FROM chunk_rows c INDEXED BY chunk_rows_open
                               WHERE c.batch_id = b.id
                               AND c.state IN {CHUNK_ROW_OPEN_STATES})
                             + (SELECT COUNT(*) FROM member_rows m INDEXED BY member_rows_open
                               WHERE m.batch_id = b.id
                               AND m.state IN {MEMBER_OPEN_STATES})
                 FROM batches b WHERE b.closed IS NULL AND b.imported = 1 ORDER BY b.id",
            ))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let mut out = Vec::new();
        for (id, open) in ids.into_iter().filter(|(_, open)| *open > 0) {
            if let Some(b) = self.batch_by_id(id)? {
                out.push((b, open as u64));
            }
        }
        Ok(out)
    }

    /// Whether another payout holds this journal's lock now (a run under way). Read-only
    /// commands ask without taking the lock for longer than the question.
    pub fn in_use(&self) -> bool {
        let Ok(file) = File::open(&self.path) else {
            return false;
        };
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                false
            }
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(std::fs::TryLockError::Error(_)) => false,
        }
    }

    /// Opens an existing journal for reading only, without its lock (for `status`, `report`).
    /// A journal on a read-only filesystem is opened as immutable.
    pub fn open_read_only(path: &Path) -> Result<Journal, JournalError> {
        if !path.exists() {
            return Err(JournalError::Missing(path.to_owned()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let probe = |conn: Connection| -> Result<Connection, rusqlite::Error> {
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?;
            Ok(conn)
        };
        let conn = match Connection::open_with_flags(path, flags).and_then(probe) {
            Ok(c) => c,
            // A WAL journal needs its -shm file; on a read-only filesystem it cannot be made.
            // A journal payout closed cleanly has no WAL left, so reading it as immutable is
            // complete.
            Err(_) => {
                let uri = format!("file:{}?immutable=1", uri_path(path));
                Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
                    .and_then(probe)
                    .map_err(|e| not_a_journal_or(path, e))?
            }
        };
        let journal = Journal {
            conn,
            path: path.to_owned(),
            guard: None,
            warnings: Vec::new(),
        };
        journal.check_is_journal()?;
        let found = journal.user_version()?;
        if found > MIGRATIONS.len() as i64 {
            return Err(JournalError::TooNew {
                path: path.to_owned(),
                found,
                known: MIGRATIONS.len() as i64,
            });
        }
        if found < MIGRATIONS.len() as i64 {
            // An older journal is read once it is upgraded, which needs the lock (briefly) and
            // writes it: a read-only command says so, for an older payout refuses it after.
            drop(journal);
            let mut upgraded = Journal::open(path)?;
            upgraded.warnings.push(format!(
                "the journal {} was upgraded from schema {found} to {} to be read; a payout older than this one can no longer open it",
                path.display(),
                MIGRATIONS.len()
            ));
            return Ok(upgraded);
        }
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version and what SQLite's `PRAGMA quick_check` says (`["ok"]` when sound):
    /// what `payout doctor` reports of the file.
    pub fn health(&self) -> Result<(i64, Vec<String>), JournalError> {
        let version = self.user_version()?;
        let mut st = self.conn.prepare("PRAGMA quick_check")?;
        let found = st
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok((version, found))
    }

    /// Things worth telling the user about the journal file itself (permissions tightened, ...).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Fails if the journal file was deleted or replaced since it was opened.
    pub fn check_file(&self) -> Result<(), JournalError> {
        match &self.guard {
            Some(g) => g.check(),
            None => Ok(()),
        }
    }

    fn user_version(&self) -> Result<i64, JournalError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| not_a_journal_or(&self.path, e))
    }

    /// Refuses any SQLite database that payout did not create (or any other file): payout
    /// must never add its tables to someone else's data.
    fn check_is_journal(&self) -> Result<(), JournalError> {
        let version = self.user_version()?;
        let app: i64 = self
            .conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))?;
        let tables: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )?;
        let has_batches: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batches')",
            [],
            |r| r.get(0),
        )?;
        let fresh = version == 0 && app == 0 && tables == 0;
        // payout 0.1 did not set an application id; its journals have version 1 and `batches`.
        let ours = app == APPLICATION_ID || (app == 0 && version >= 1 && has_batches);
        if fresh || ours {
            Ok(())
        } else {
            Err(JournalError::NotAJournal(self.path.clone()))
        }
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
        let found = self.user_version()?;
        let known = MIGRATIONS.len() as i64;
        if found > known {
            return Err(JournalError::TooNew {
                path: self.path.clone(),
                found,
                known,
            });
        }
        if found == known {
            return Ok(());
        }
        // Rebuilding a table that others reference needs foreign keys off, which SQLite only
        // allows outside a transaction.
        self.conn.pragma_update(None, "foreign_keys", "OFF")?;
        let result = (|| -> Result<(), JournalError> {
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
                let version = (i + 1) as i64;
                let tx = self.conn.transaction()?;
                tx.execute_batch(sql)?;
                migrate::after(&tx, version)?;
                let violations: i64 =
                    tx.query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                        r.get(0)
                    })?;
                if violations > 0 {
                    return Err(JournalError::Write(format!(
                        "migration to schema {version} left {violations} broken references"
                    )));
                }
                tx.pragma_update(None, "user_version", version)?;
                tx.pragma_update(None, "application_id", APPLICATION_ID)?;
                tx.commit()?;
            }
            Ok(())
        })();
        self.conn.pragma_update(None, "foreign_keys", "ON")?;
        result
    }

    /// Hands the connection to a writer thread for the duration of a run.
    pub fn into_writer(self) -> JournalWriter {
        writer::start(self)
    }

    /// Lends the journal to a writer thread for `f` (a verification, a run) and takes it back.
    /// While lent, `self` is an empty in-memory placeholder.
    pub async fn with_writer<T, F, Fut>(&mut self, f: F) -> Result<T, JournalError>
    where
        F: FnOnce(std::sync::Arc<JournalWriter>) -> Fut,
        Fut: std::future::Future<Output = Result<T, JournalError>>,
    {
        let placeholder = Journal {
            conn: Connection::open_in_memory()?,
            path: self.path.clone(),
            guard: None,
            warnings: Vec::new(),
        };
        let owned = std::mem::replace(self, placeholder);
        let writer = std::sync::Arc::new(owned.into_writer());
        let result = f(writer.clone()).await;
        match std::sync::Arc::try_unwrap(writer) {
            Ok(w) => *self = w.finish(),
            Err(_) => panic!("the writer is given back when `f` ends"),
        }
        result
    }

    /// Applies one write now, in its own transaction (outside a run).
    pub fn write(&mut self, w: &Write) -> Result<i64, JournalError> {
        let tx = self.conn.transaction()?;
        let n = writer::apply(&tx, w)?;
        tx.commit()?;
        self.check_file()?;
        Ok(n)
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// SQLite's error for "this is not a database" becomes payout's "not a payout journal".
fn not_a_journal_or(path: &Path, e: rusqlite::Error) -> JournalError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => JournalError::NotAJournal(path.to_owned()),
        _ => JournalError::Sql(e),
    }
}

/// A path as a `file:` URI path (percent-encoding what URIs reserve).
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for b in path.to_string_lossy().bytes() {
        match b {
            b'%' | b'?' | b'#' | b' ' => out.push_str(&format!("%{b:02X}")),
            _ => out.push(b as char),
        }
    }
    out
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn private_file(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

/// The files a journal consists of besides the database: payout must never write over them.
pub fn companion_paths(path: &Path) -> Vec<PathBuf> {
    ["-wal", "-shm", "-journal", ".lock"]
        .iter()
        .map(|suffix| {
            let mut s = path.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
