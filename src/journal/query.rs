//! What the journal answers: batches by name or fingerprint, pages of operations, a group's
//! history across batches, counts and money by SQL aggregate. Every query takes a plain
//! connection so that the writer thread can answer the same questions during a run.

use std::collections::BTreeSet;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::chunks::CHUNK_ROW_OPEN_STATES;
use super::members::MEMBER_OPEN_STATES;
use super::records::{
    BatchInfo, BatchKind, CloseKind, Closed, ITEM_COLUMNS, ItemRecord, ItemState, NewBatch,
    OPEN_STATES, QualTypeRecord, QualTypeState, UNSETTLED_STATES, op_columns,
};
pub(crate) use super::records::{item_columns, item_from_row};
use super::{Journal, JournalError, now_ms};
use crate::ids::QualificationTypeId;
pub use crate::item::{GroupItem, PriorItem};
use crate::item::{PlannedItem, PriorError};
use crate::money::Cents;
use crate::op::{Group, Kind, Operation};
use crate::target::{Endpoint, Target, ledger};

const BATCH_COLUMNS: &str = "b.id, b.name, b.fingerprint, b.content_digest, b.kind, b.target, \
    b.endpoint, b.ledger, b.source, b.created_ms, b.options, b.closed, \
    (SELECT name FROM batches c WHERE c.id = b.closed_by), b.closed_ms";

fn batch_from_row(r: &Row<'_>) -> rusqlite::Result<BatchInfo> {
    let target: String = r.get(5)?;
    let endpoint: Option<String> = r.get(6)?;
    let options: String = r.get(10)?;
    let closed: Option<String> = r.get(11)?;
    Ok(BatchInfo {
        id: r.get(0)?,
        name: r.get(1)?,
        fingerprint: r.get(2)?,
        content_digest: r.get(3)?,
        kind: BatchKind::parse(&r.get::<_, String>(4)?),
        target: Target::parse(&target).unwrap_or(Target::Sandbox),
        // Stored endpoints were checked when recorded; one that no longer parses is kept as
        // it was so that the ledger still matches.
        endpoint: endpoint.map(|e| Endpoint::parse(&e).unwrap_or_else(|_| Endpoint::raw(e))),
        ledger: r.get(7)?,
        source: r.get(8)?,
        created_ms: r.get(9)?,
        options: serde_json::from_str(&options).unwrap_or_default(),
        closed: closed
            .map(|how| -> rusqlite::Result<Closed> {
                Ok(Closed {
                    how: if how == "superseded" {
                        CloseKind::Superseded
                    } else {
                        CloseKind::Cancelled
                    },
                    by: r.get(12)?,
                    ms: r.get::<_, Option<i64>>(13)?.unwrap_or(0),
                })
            })
            .transpose()?,
    })
}

fn query_batch(
    conn: &Connection,
    filter: &str,
    params: impl rusqlite::Params,
) -> Result<Option<BatchInfo>, JournalError> {
    let sql = format!("SELECT {BATCH_COLUMNS} FROM batches b {filter}");
    Ok(conn.query_row(&sql, params, batch_from_row).optional()?)
}

/// The newest batch with this fingerprint that is still open (not cancelled or superseded).
pub(crate) fn batch_by_fingerprint(
    conn: &Connection,
    fingerprint: &str,
) -> Result<Option<BatchInfo>, JournalError> {
    query_batch(
        conn,
        "WHERE b.fingerprint = ?1 AND b.closed IS NULL AND b.imported = 1
         ORDER BY b.id DESC LIMIT 1",
        [fingerprint],
    )
}

pub(crate) fn batch_by_id(conn: &Connection, id: i64) -> Result<Option<BatchInfo>, JournalError> {
    query_batch(conn, "WHERE b.id = ?1", [id])
}

/// Counts and money of one (kind, state) in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindStateCount {
    pub kind: Kind,
    pub state: ItemState,
    pub count: u64,
    pub amount: Cents,
    pub fee: Cents,
    pub notifications: u64,
}

/// How many open items [`Journal::open_summary`] reads through the open-items index before it
/// reads the rest of the batch as a range of the table.
pub(crate) const OPEN_THROUGH_INDEX: i64 = 4096;

/// Column `i` as text, borrowed from the row (no copy per row).
fn text<'r>(r: &'r Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn prior_items(
    conn: &Connection,
    filter: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<PriorItem>, JournalError> {
    let sql = format!(
        "SELECT b.name, b.closed IS NOT NULL, {} FROM items i JOIN batches b ON b.id = i.batch_id
         WHERE {filter} ORDER BY i.batch_id, i.seq",
        item_columns("i")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params, |r| {
        Ok(PriorItem {
            batch_name: r.get(0)?,
            batch_closed: r.get(1)?,
            item: item_from_row(r, 2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every item of `group` on `ledger`, in every batch but `exclude` (-1: none), oldest first.
pub(crate) fn group_items(
    conn: &Connection,
    ledger: &str,
    group: &Group,
    exclude: i64,
) -> Result<Vec<GroupItem>, JournalError> {
    let mut items = prior_items(
        conn,
        "i.group_hash = ?1 AND b.ledger = ?2 AND i.batch_id != ?3",
        params![group.hash64(), ledger, exclude],
    )?;
    items.retain(|p| p.item.op.group() == *group);
    Ok(items)
}

/// Items of other batches on `ledger` that are the same operation as `op`: found through its
/// group (the same operation is always in the same group; the journal indexes groups only).
pub(crate) fn same_ops(
    conn: &Connection,
    ledger: &str,
    op: &Operation,
    exclude_batch: i64,
) -> Result<Vec<PriorItem>, JournalError> {
    let mut items = prior_items(
        conn,
        "i.group_hash = ?1 AND i.op_hash = ?2 AND b.ledger = ?3 AND i.batch_id != ?4",
        params![
            op.group().hash64(),
            op.identity_hash(),
            ledger,
            exclude_batch
        ],
    )?;
    items.retain(|p| p.item.op.same_as(op));
    Ok(items)
}

/// Which items of a batch a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemFilter {
    All,
    /// Pending, in flight or unknown.
    Open,
    State(ItemState),
}

/// A page of a batch's items after `after` (by plan position). Pages of open items come
/// through the `items_open` partial index, so finding the first open item of a batch that is
/// nearly done reads a handful of rows, not the batch.
pub(crate) fn items_page(
    conn: &Connection,
    batch: i64,
    after: Option<u32>,
    limit: usize,
    filter: ItemFilter,
) -> Result<Vec<ItemRecord>, JournalError> {
    // The partial index is used only when the query repeats its condition word for word.
    let open = format!("state IN {OPEN_STATES}");
    // SQLite cannot know that few items of a large batch are open; it is told.
    const BY_OPEN: &str = "INDEXED BY items_open";
    // Fewer still were sent without a known outcome: a resume looks for those first.
    let unsettled = format!("state IN {UNSETTLED_STATES}");
    const BY_UNSETTLED: &str = "INDEXED BY items_unsettled";
    let (index, condition, state) = match filter {
        ItemFilter::All => ("", String::from("?4 = ''"), ""),
        ItemFilter::Open => (BY_OPEN, format!("{open} AND ?4 = ''"), ""),
        ItemFilter::State(s @ (ItemState::InFlight | ItemState::Unknown)) => (
            BY_UNSETTLED,
            format!("{unsettled} AND state = ?4"),
            s.as_str(),
        ),
        ItemFilter::State(s) if s.is_open() => {
            (BY_OPEN, format!("{open} AND state = ?4"), s.as_str())
        }
        ItemFilter::State(s) => ("", String::from("state = ?4"), s.as_str()),
    };
    let sql = format!(
        "SELECT {ITEM_COLUMNS} FROM items {index} WHERE batch_id = ?1 AND seq > ?2 AND {condition}
         ORDER BY seq LIMIT ?3"
    );
    let after = after.map_or(-1, i64::from);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![batch, after, limit as i64, state], |r| {
        item_from_row(r, 0)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Counts, money, fees and notifications per (kind, state): summaries never read every row
/// into memory.
pub(crate) fn kind_state_counts(
    conn: &Connection,
    batch: i64,
    open_only: bool,
) -> Result<Vec<KindStateCount>, JournalError> {
    // What is left of a nearly finished batch is read through the partial index.
    let (index, open) = if open_only {
        (
            "INDEXED BY items_open",
            format!("AND state IN {OPEN_STATES}"),
        )
    } else {
        ("", String::new())
    };
    let sql = format!(
        "SELECT kind, state, COUNT(*), COALESCE(SUM(amount_cents), 0), COALESCE(SUM(fee_cents), 0),
                COALESCE(SUM(notify), 0)
         FROM items {index} WHERE batch_id = ?1 {open} GROUP BY kind, state"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([batch], |r| {
        let kind: String = r.get(0)?;
        let state: String = r.get(1)?;
        Ok(KindStateCount {
            kind: Kind::parse(&kind).unwrap_or(Kind::Bonus),
            state: ItemState::parse(&state).unwrap_or(ItemState::Pending),
            count: r.get::<_, i64>(2)? as u64,
            amount: Cents(r.get::<_, i64>(3)? as u64),
            fee: Cents(r.get::<_, i64>(4)? as u64),
            notifications: r.get::<_, i64>(5)? as u64,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether any batch other than `exclude` pays into `ledger`.
pub(crate) fn ledger_has_other_batches(
    conn: &Connection,
    ledger: &str,
    exclude: i64,
) -> Result<bool, JournalError> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM batches WHERE ledger = ?1 AND id != ?2)",
        params![ledger, exclude],
        |r| r.get(0),
    )?)
}

/// The groups of other batches' unknown operations on `ledger` that hold an open operation of
/// `batch` (rare: version-1 journals, or batches recorded before another's answers were known).
pub(crate) fn foreign_unknown_groups(
    conn: &Connection,
    ledger: &str,
    batch: i64,
) -> Result<BTreeSet<Group>, JournalError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM items o INDEXED BY items_unsettled JOIN batches b ON b.id = o.batch_id
         WHERE b.ledger = ?1 AND o.batch_id != ?2
           AND o.state IN {UNSETTLED_STATES}
           AND EXISTS (SELECT 1 FROM items m WHERE m.batch_id = ?2 AND m.group_hash = o.group_hash
                       AND m.state IN {OPEN_STATES})",
        item_columns("o")
    ))?;
    let items = stmt
        .query_map(params![ledger, batch], |r| item_from_row(r, 0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(items.into_iter().map(|i| i.op.group()).collect())
}

impl Journal {
    pub fn batch_by_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Option<BatchInfo>, JournalError> {
        batch_by_fingerprint(self.conn(), fingerprint)
    }

    /// The batch a run of this fingerprint goes on with, if any. A bonus batch is always the
    /// same payments: found again, finished or not, so that nothing is paid twice. A batch of
    /// states (scores, revokes, blocks) is gone on with only while it has work left: a file
    /// run again after it finished asks for its states *now*, which is a new batch (planned
    /// against everything done since).
    pub fn batch_to_continue(&self, fingerprint: &str) -> Result<Option<BatchInfo>, JournalError> {
        let Some(batch) = batch_by_fingerprint(self.conn(), fingerprint)? else {
            return Ok(None);
        };
        if batch.kind == BatchKind::Bonus {
            return Ok(Some(batch));
        }
        let open: bool = self.conn().query_row(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM items INDEXED BY items_open WHERE batch_id = ?1
                   AND state IN {OPEN_STATES})"
            ),
            [batch.id],
            |r| r.get(0),
        )?;
        Ok(open.then_some(batch))
    }

    pub fn batch_by_name(&self, name: &str) -> Result<Option<BatchInfo>, JournalError> {
        query_batch(self.conn(), "WHERE b.name = ?1", [name])
    }

    pub fn batch_by_id(&self, id: i64) -> Result<Option<BatchInfo>, JournalError> {
        batch_by_id(self.conn(), id)
    }

    /// The most recent batch, or the most recent open one with work left.
    pub fn latest_batch(&self, only_open: bool) -> Result<Option<BatchInfo>, JournalError> {
        let filter = if only_open {
            format!(
                "WHERE b.closed IS NULL AND b.imported = 1 AND (EXISTS (SELECT 1 FROM items i
                   INDEXED BY items_open WHERE i.batch_id = b.id
                   AND i.state IN {OPEN_STATES})
                   OR EXISTS (SELECT 1 FROM chunk_rows c INDEXED BY chunk_rows_open
                   WHERE c.batch_id = b.id AND c.state IN {CHUNK_ROW_OPEN_STATES})
                   OR EXISTS (SELECT 1 FROM member_rows m INDEXED BY member_rows_open
                   WHERE m.batch_id = b.id AND m.state IN {MEMBER_OPEN_STATES}))
                   ORDER BY b.id DESC LIMIT 1"
            )
        } else {
            String::from("ORDER BY b.id DESC LIMIT 1")
        };
        query_batch(self.conn(), &filter, [])
    }

    pub fn same_ops(
        &self,
        ledger: &str,
        op: &Operation,
        exclude_batch: i64,
    ) -> Result<Vec<PriorItem>, JournalError> {
        same_ops(self.conn(), ledger, op, exclude_batch)
    }

    /// Every item of `group` on `ledger`, in every batch but `exclude` (-1: none).
    pub fn group_items(
        &self,
        ledger: &str,
        group: &Group,
        exclude: i64,
    ) -> Result<Vec<GroupItem>, JournalError> {
        group_items(self.conn(), ledger, group, exclude)
    }

    pub fn items_page(
        &self,
        batch: i64,
        after: Option<u32>,
        limit: usize,
        filter: ItemFilter,
    ) -> Result<Vec<ItemRecord>, JournalError> {
        items_page(self.conn(), batch, after, limit, filter)
    }

    /// Every item of a batch, in plan order (small batches and tests; large ones page).
    pub fn items(&self, batch: i64) -> Result<Vec<ItemRecord>, JournalError> {
        let mut all = Vec::new();
        self.for_each_item(batch, |i| {
            all.push(i);
            Ok(())
        })?;
        Ok(all)
    }

    /// Calls `f` with every item of a batch in plan order, a page at a time.
    pub fn for_each_item(
        &self,
        batch: i64,
        mut f: impl FnMut(ItemRecord) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let mut after = None;
        loop {
            let page = items_page(self.conn(), batch, after, 1000, ItemFilter::All)?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = Some(last.seq);
            for item in page {
                f(item)?;
            }
        }
    }

    pub fn kind_state_counts(&self, batch: i64) -> Result<Vec<KindStateCount>, JournalError> {
        kind_state_counts(self.conn(), batch, false)
    }

    /// [`Journal::kind_state_counts`] of the open operations only, through the partial index.
    pub fn open_kind_state_counts(&self, batch: i64) -> Result<Vec<KindStateCount>, JournalError> {
        kind_state_counts(self.conn(), batch, true)
    }

    pub fn distinct_workers(&self, batch: i64) -> Result<u64, JournalError> {
        Ok(self.conn().query_row(
            "SELECT COUNT(DISTINCT worker_id) FROM items WHERE batch_id = ?1",
            [batch],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// What is left of a batch, in one pass over its open operations: counts and money per
    /// (kind, state), in the order first met, and how many distinct workers they name.
    ///
    /// One pass, and no `COUNT(DISTINCT worker_id)`: SQLite answers that by sorting every open
    /// worker ID into a temporary B-tree, most of the time a million-row batch stopped near its
    /// start spent on its totals before its first call on resume. The workers are counted here
    /// as the planner counts them, as a set of 64-bit hashes of their IDs (8 bytes a worker; two
    /// different IDs would have to share a hash to be counted once, about n²/2⁶⁵ ≈ 3·10⁻⁸ for a
    /// million workers).
    ///
    /// The first rows come through the open-items index, which is all a nearly finished batch
    /// needs; when there are many, the rest are read as a range of the table, cheaper than one
    /// index lookup per row when nearly every row of the batch is open.
    pub fn open_summary(&self, batch: i64) -> Result<(Vec<KindStateCount>, u64), JournalError> {
        use std::hash::{Hash, Hasher};
        const COLUMNS: &str = "seq, kind, state, amount_cents, fee_cents, notify, worker_id";
        let mut counts: Vec<KindStateCount> = Vec::new();
        let mut workers = std::collections::HashSet::<u64>::new();
        let mut last = -1i64;
        // Counts one row; answers its seq.
        let mut absorb = |r: &Row<'_>| -> Result<i64, JournalError> {
            let seq: i64 = r.get(0)?;
            let kind = Kind::parse(text(r, 1)?).unwrap_or(Kind::Bonus);
            let state = ItemState::parse(text(r, 2)?).unwrap_or(ItemState::Pending);
            let amount = r.get::<_, Option<i64>>(3)?.unwrap_or(0) as u64;
            let fee = r.get::<_, Option<i64>>(4)?.unwrap_or(0) as u64;
            let notify = r.get::<_, Option<i64>>(5)?.unwrap_or(0) as u64;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            text(r, 6)?.hash(&mut h);
            workers.insert(h.finish());
            let at = match counts
                .iter()
                .position(|c| c.kind == kind && c.state == state)
            {
                Some(i) => i,
                None => {
                    counts.push(KindStateCount {
                        kind,
                        state,
                        count: 0,
                        amount: Cents::ZERO,
                        fee: Cents::ZERO,
                        notifications: 0,
                    });
                    counts.len() - 1
                }
            };
            let c = &mut counts[at];
            c.count += 1;
            c.amount = Cents(c.amount.0 + amount);
            c.fee = Cents(c.fee.0 + fee);
            c.notifications += notify;
            Ok(seq)
        };
        let mut first = self.conn().prepare_cached(&format!(
            "SELECT {COLUMNS} FROM items INDEXED BY items_open
             WHERE batch_id = ?1 AND state IN {OPEN_STATES}
             ORDER BY seq LIMIT ?2"
        ))?;
        let mut rows = first.query(params![batch, OPEN_THROUGH_INDEX])?;
        let mut seen = 0;
        while let Some(r) = rows.next()? {
            last = absorb(r)?;
            seen += 1;
        }
        if seen == OPEN_THROUGH_INDEX {
            let mut rest = self.conn().prepare_cached(&format!(
                "SELECT {COLUMNS} FROM items
                 WHERE batch_id = ?1 AND seq > ?2 AND state IN {OPEN_STATES}"
            ))?;
            let mut rows = rest.query(params![batch, last])?;
            while let Some(r) = rows.next()? {
                absorb(r)?;
            }
        }
        Ok((counts, workers.len() as u64))
    }

    /// Distinct workers among a batch's open operations.
    pub fn open_workers(&self, batch: i64) -> Result<u64, JournalError> {
        Ok(self.conn().query_row(
            &format!(
                "SELECT COUNT(DISTINCT worker_id) FROM items INDEXED BY items_open
                 WHERE batch_id = ?1 AND state IN {OPEN_STATES}"
            ),
            [batch],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Items that failed, or are open with an error, first `limit` in plan order; and how many.
    pub fn problem_items(
        &self,
        batch: i64,
        limit: usize,
    ) -> Result<(Vec<ItemRecord>, u64), JournalError> {
        let filter = format!(
            "batch_id = ?1 AND (state = 'failed' OR
             (state IN {OPEN_STATES} AND error IS NOT NULL))"
        );
        let total: i64 = self.conn().query_row(
            &format!("SELECT COUNT(*) FROM items WHERE {filter}"),
            [batch],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE {filter} ORDER BY seq LIMIT ?2"
        ))?;
        let items = stmt
            .query_map(params![batch, limit as i64], |r| item_from_row(r, 0))?
            .collect::<Result<_, _>>()?;
        Ok((items, total as u64))
    }

    /// Records a batch (no items yet) and gives it a short unique name from its source file.
    pub fn insert_batch(&mut self, new: &NewBatch) -> Result<BatchInfo, JournalError> {
        let stem = Path::new(&new.source)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "batch".into());
        let stem: String = stem
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        let tx = self.conn_mut().transaction()?;
        let short = &new.fingerprint[..6.min(new.fingerprint.len())];
        let mut name = format!("{stem}-{short}");
        let mut n = 2;
        while tx
            .query_row("SELECT 1 FROM batches WHERE name = ?1", [&name], |_| Ok(()))
            .optional()?
            .is_some()
        {
            name = format!("{stem}-{short}-{n}");
            n += 1;
        }
        let ledger = ledger(new.target, new.endpoint.as_ref());
        tx.execute(
            "INSERT INTO batches (name, fingerprint, content_digest, kind, target, endpoint, ledger,
                                  source, created_ms, options, imported)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0)",
            params![
                name,
                new.fingerprint,
                new.content_digest,
                new.kind.as_str(),
                new.target.as_str(),
                new.endpoint.as_ref().map(Endpoint::as_str),
                ledger,
                new.source,
                now_ms(),
                serde_json::to_string(&new.options).expect("options serialise"),
            ],
        )?;
        let id = tx.last_insert_rowid();
        let batch = batch_by_id(&tx, id)?.expect("the batch just inserted");
        tx.commit()?;
        self.check_file()?;
        Ok(batch)
    }

    /// Marks a batch's import complete: only then is it found, resumed or run.
    pub fn finish_import(&mut self, batch: i64) -> Result<(), JournalError> {
        self.conn()
            .execute("UPDATE batches SET imported = 1 WHERE id = ?1", [batch])?;
        self.check_file()
    }

    /// Adds planned items to a batch and commits them (the batch stays unusable until
    /// [`Journal::finish_import`]).
    pub fn insert_items<'a>(
        &mut self,
        batch: i64,
        items: impl IntoIterator<Item = &'a PlannedItem>,
    ) -> Result<u64, JournalError> {
        let mut import = self.import(batch, false)?;
        for item in items {
            import.push(item.clone())?;
        }
        import.commit()?;
        Ok(import.count)
    }

    /// Starts writing a batch's items: see [`Import`]. `bulk` for a large import (see
    /// [`Journal::bulk_import_pays`]).
    pub fn import(&mut self, batch: i64, bulk: bool) -> Result<Import<'_>, JournalError> {
        let cache = if bulk {
            BULK_CACHE_KIB
        } else {
            IMPORT_CACHE_KIB
        };
        self.conn().pragma_update(None, "cache_size", -cache)?;
        Ok(Import {
            journal: self,
            batch,
            bulk,
            waiting: Vec::with_capacity(ROWS_PER_INSERT),
            in_transaction: false,
            dropped_index: None,
            count: 0,
        })
    }

    /// What payout knows of a qualification type name on a ledger.
    pub fn qual_type(
        &self,
        ledger: &str,
        name: &str,
    ) -> Result<Option<QualTypeRecord>, JournalError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name, type_id, state FROM qualification_types WHERE ledger = ?1 AND name = ?2",
                params![ledger, name],
                |r| {
                    let id: Option<String> = r.get(1)?;
                    Ok(QualTypeRecord {
                        name: r.get(0)?,
                        type_id: id.and_then(|i| QualificationTypeId::parse(&i).ok()),
                        state: QualTypeState::parse(&r.get::<_, String>(2)?),
                    })
                },
            )
            .optional()?)
    }

    /// Distinct qualification names the items of every batch on `ledger` name their type by
    /// (recorded before the type existed, or by a payout that recorded names).
    pub fn ledger_qualification_names(&self, ledger: &str) -> Result<Vec<String>, JournalError> {
        let mut stmt = self.conn().prepare(
            "SELECT DISTINCT i.qual_name FROM items i JOIN batches b ON b.id = i.batch_id
             WHERE b.ledger = ?1 AND i.qual_name IS NOT NULL ORDER BY i.qual_name",
        )?;
        let names = stmt
            .query_map([ledger], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    /// Distinct qualification names used by a batch's items.
    pub fn qualification_names(&self, batch: i64) -> Result<Vec<String>, JournalError> {
        let mut stmt = self.conn().prepare(
            "SELECT DISTINCT qual_name FROM items WHERE batch_id = ?1 AND qual_name IS NOT NULL
             ORDER BY qual_name",
        )?;
        let names = stmt
            .query_map([batch], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    /// The platform's limit as the last run on this ledger measured it, if it did.
    pub fn last_limit(&self, ledger: &str) -> Result<Option<f64>, JournalError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT r.limit_estimate FROM runs r JOIN batches b ON b.id = r.batch_id
                 WHERE b.ledger = ?1 AND r.limit_estimate IS NOT NULL ORDER BY r.id DESC LIMIT 1",
                [ledger],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Open, unfinished batches on a target (any endpoint).
    pub fn open_batches_on_target(&self, target: Target) -> Result<Vec<BatchInfo>, JournalError> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {BATCH_COLUMNS} FROM batches b WHERE b.target = ?1 AND b.closed IS NULL
             AND EXISTS (SELECT 1 FROM items i INDEXED BY items_open WHERE i.batch_id = b.id
                         AND i.state IN {OPEN_STATES})
             ORDER BY b.id"
        ))?;
        let rows = stmt
            .query_map([target.as_str()], batch_from_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// How the content with this digest was rehearsed, if it was (see
    /// [`Journal::rehearsal_record`]), in words.
    pub fn rehearsal(&self, content_digest: &str) -> Result<Option<String>, JournalError> {
        Ok(self.rehearsal_record(content_digest)?.map(|r| r.how))
    }

    /// How the content with this digest was rehearsed, if it was: a sandbox batch that ran to
    /// the end — every operation answered for good (done, failed or skipped), the batch neither
    /// cancelled nor superseded — or a production dry run whose preflight passed (perhaps
    /// over only the first operations of a large file).
    pub fn rehearsal_record(
        &self,
        content_digest: &str,
    ) -> Result<Option<Rehearsal>, JournalError> {
        let sandbox: Option<(String, i64, i64, i64)> = self
            .conn()
            .query_row(
                "SELECT b.name,
                        (SELECT COUNT(*) FROM items i WHERE i.batch_id = b.id AND i.state = 'done'),
                        (SELECT COUNT(*) FROM items i WHERE i.batch_id = b.id AND i.state = 'failed'),
                        (SELECT COUNT(*) FROM items i WHERE i.batch_id = b.id AND i.state = 'skipped')
                 FROM batches b WHERE b.content_digest = ?1 AND b.target = 'sandbox'
                 AND b.closed IS NULL AND b.imported = 1
                 AND NOT EXISTS (SELECT 1 FROM items i WHERE i.batch_id = b.id
                                 AND i.state NOT IN ('done', 'failed', 'skipped'))
                 ORDER BY b.id DESC LIMIT 1",
                [content_digest],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        if let Some((name, done, failed, skipped)) = sandbox {
            return Ok(Some(Rehearsal {
                how: format!(
                    "sandbox batch {name} ran to the end ({done} done, {failed} failed, {skipped} skipped)"
                ),
                checked: None,
            }));
        }
        let preflight: Option<(i64, String)> = self
            .conn()
            .query_row(
                "SELECT recorded_ms, how FROM rehearsals WHERE content_digest = ?1
                 ORDER BY id DESC LIMIT 1",
                [content_digest],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(preflight.map(|(ms, how)| {
            let when = super::rfc3339(Some(ms));
            match Rehearsal::parse_checked(&how) {
                Some((checked, of)) => Rehearsal {
                    how: format!(
                        "a production dry run passed its preflight for the first {checked} of {of} operations ({when})"
                    ),
                    checked: Some((checked, of)),
                },
                None => Rehearsal {
                    how: format!("a production dry run passed its preflight ({when})"),
                    checked: None,
                },
            }
        }))
    }
}

/// How a batch's content was rehearsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rehearsal {
    /// In words, for the banner.
    pub how: String,
    /// For a dry run that checked only the first operations: (checked, of how many).
    pub checked: Option<(u64, u64)>,
}

impl Rehearsal {
    /// The `how` recorded for a preflight that checked `checked` of `of` operations. A whole
    /// preflight is recorded as `preflight`, as payout always did.
    pub fn preflight_how(checked: Option<(u64, u64)>) -> String {
        match checked {
            Some((c, of)) => format!("preflight:{c}/{of}"),
            None => "preflight".into(),
        }
    }

    fn parse_checked(how: &str) -> Option<(u64, u64)> {
        let (c, of) = how.strip_prefix("preflight:")?.split_once('/')?;
        Some((c.parse().ok()?, of.parse().ok()?))
    }
}

/// What planning asks the journal about one ledger (see [`crate::item::Prior`]).
pub struct LedgerPrior<'a> {
    journal: &'a Journal,
    ledger: String,
    /// A batch whose items are not "prior" (the batch being imported), or -1.
    exclude: i64,
    /// Whether the ledger has any other batch at all: if not, nothing is asked.
    any: bool,
}

impl Journal {
    /// The planning view of `ledger` for a batch not yet recorded.
    pub fn prior(&self, ledger: &str) -> Result<LedgerPrior<'_>, JournalError> {
        self.prior_excluding(ledger, -1)
    }

    /// The planning view of `ledger` for `batch`, recorded and being imported: its own items
    /// (and the batch itself) are not history. Without this, every row of an import on a
    /// ledger with no other batch would be looked up twice in the journal.
    pub fn prior_excluding(
        &self,
        ledger: &str,
        batch: i64,
    ) -> Result<LedgerPrior<'_>, JournalError> {
        let any = self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM batches WHERE ledger = ?1 AND id != ?2)",
            params![ledger, batch],
            |r| r.get(0),
        )?;
        Ok(LedgerPrior {
            journal: self,
            ledger: ledger.to_owned(),
            exclude: batch,
            any,
        })
    }
}

impl LedgerPrior<'_> {
    /// Whether any batch pays into this ledger: if not, no answer can be other than "none".
    pub fn has_history(&self) -> bool {
        self.any
    }
}

impl crate::item::Prior for LedgerPrior<'_> {
    fn same_ops(&mut self, op: &Operation) -> Result<Vec<PriorItem>, PriorError> {
        if !self.any {
            return Ok(Vec::new());
        }
        Ok(same_ops(
            self.journal.conn(),
            &self.ledger,
            op,
            self.exclude,
        )?)
    }

    fn group_elsewhere(&mut self, group: &Group) -> Result<Vec<PriorItem>, PriorError> {
        if !self.any {
            return Ok(Vec::new());
        }
        Ok(group_items(
            self.journal.conn(),
            &self.ledger,
            group,
            self.exclude,
        )?)
    }
}

/// An import of at least this many rows, into a journal holding no more rows than it adds,
/// is a bulk import (see [`Journal::bulk_import_pays`]).
pub const BULK_IMPORT_ROWS: u64 = 100_000;
/// SQLite's page cache during an import, KiB (its default is 2,000 KiB).
const IMPORT_CACHE_KIB: i64 = 32 * 1024;
/// The page cache of a bulk import, KiB: it only appends, and its index sort takes as much
/// memory as the cache is allowed.
const BULK_CACHE_KIB: i64 = 8 * 1024;
/// SQLite's default page cache, KiB, given back when an import ends.
const DEFAULT_CACHE_KIB: i64 = 2_000;
/// Rows inserted by one statement. SQLite builds a table for each `IN (...)` list of three or
/// more values (the table's CHECKs, the open-items index's condition) every time a statement
/// runs: once per 64 rows costs a third of what once per row did.
const ROWS_PER_INSERT: usize = 64;
/// Values bound per row.
const ITEM_INSERT_COLUMNS: usize = 20;

/// The statement that inserts `rows` items.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO items (batch_id, seq, line, col, kind, group_hash, op_hash, worker_id,
            assignment_id, amount_cents, fee_cents, reason, qual_id, qual_name, value, notify,
            occurrence, token, state, note) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 1..=ITEM_INSERT_COLUMNS {
            if c > 1 {
                sql.push(',');
            }
            sql.push_str(&format!("?{}", r * ITEM_INSERT_COLUMNS + c));
        }
        sql.push(')');
    }
    sql
}

impl Journal {
    /// Whether an import of `rows` rows is better done in bulk: dropping the group index and
    /// building it again sorts every row of the journal, worth it only for an import at least
    /// as large as what is already there.
    pub fn bulk_import_pays(&self, rows: u64) -> Result<bool, JournalError> {
        if rows < BULK_IMPORT_ROWS {
            return Ok(false);
        }
        let existing: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0))?;
        Ok(rows >= existing as u64)
    }
}

/// A batch's items being written. The group index's keys are random hashes, so each row lands
/// on a page anywhere in it: with 20,000-row commits and SQLite's default cache, every commit
/// wrote most of that index again, and 1,000,000 rows took a minute to import.
///
/// So an import is one transaction, with a page cache that holds what it touches, committed
/// by [`Import::finish`] together with the mark that makes the batch usable — nothing of it is
/// visible before its caller has checked the rows. A bulk import also drops the group index
/// first and builds it again (a sort) before it commits. If anything fails or the process
/// stops, all of it rolls back, index included, and the import starts again from the file.
pub struct Import<'j> {
    journal: &'j mut Journal,
    batch: i64,
    bulk: bool,
    /// Rows given and not yet inserted.
    waiting: Vec<PlannedItem>,
    /// Whether this import's transaction is open.
    in_transaction: bool,
    /// The SQL of the group index a bulk import dropped (read from the schema, so that the
    /// index comes back exactly as it was).
    dropped_index: Option<String>,
    /// Rows written in all.
    pub count: u64,
}

impl Import<'_> {
    /// Writes `item` (in a moment: rows are inserted [`ROWS_PER_INSERT`] at a time).
    pub fn push(&mut self, item: PlannedItem) -> Result<(), JournalError> {
        self.waiting.push(item);
        if self.waiting.len() >= ROWS_PER_INSERT {
            self.flush()?;
        }
        Ok(())
    }

    /// Opens the import's transaction (a bulk import drops the group index in it).
    fn begin(&mut self) -> Result<(), JournalError> {
        let conn = self.journal.conn();
        conn.execute_batch("BEGIN IMMEDIATE")?;
        self.in_transaction = true;
        if self.bulk {
            let sql: Option<String> = conn
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'items_group'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(sql) = sql {
                conn.execute_batch("DROP INDEX items_group")?;
                self.dropped_index = Some(sql);
            }
        }
        Ok(())
    }

    /// Inserts the rows waiting, in one statement.
    fn flush(&mut self) -> Result<(), JournalError> {
        if self.waiting.is_empty() {
            return Ok(());
        }
        if !self.in_transaction {
            self.begin()?;
        }
        {
            let conn = self.journal.conn();
            let mut insert = conn.prepare_cached(&insert_sql(self.waiting.len()))?;
            for (i, item) in self.waiting.iter().enumerate() {
                let c = op_columns(&item.op);
                let at = i * ITEM_INSERT_COLUMNS;
                let mut bind =
                    |n: usize, v: &dyn rusqlite::ToSql| insert.raw_bind_parameter(at + n, v);
                bind(1, &self.batch)?;
                bind(2, &item.seq)?;
                bind(3, &(item.origin.line as i64))?;
                bind(4, &item.origin.column)?;
                bind(5, &c.kind)?;
                bind(6, &item.op.group().hash64())?;
                bind(7, &item.op.identity_hash())?;
                bind(8, &c.worker)?;
                bind(9, &c.assignment)?;
                bind(10, &c.amount)?;
                bind(11, &item.fee.map(|f| f.0 as i64))?;
                bind(12, &c.reason)?;
                bind(13, &c.qual_id)?;
                bind(14, &c.qual_name)?;
                bind(15, &c.value)?;
                bind(16, &c.notify)?;
                bind(17, &item.occurrence)?;
                bind(18, &item.token)?;
                bind(19, &item.state.as_str())?;
                bind(20, &item.note)?;
            }
            insert.raw_execute()?;
        }
        self.count += self.waiting.len() as u64;
        self.waiting.clear();
        Ok(())
    }

    /// Commits what was written (a bulk import first builds its index again); `imported`
    /// also marks the batch usable, in the same transaction.
    fn commit_with(&mut self, imported: bool) -> Result<(), JournalError> {
        self.flush()?;
        if !self.in_transaction {
            if imported {
                self.journal.finish_import(self.batch)?;
            }
            return Ok(());
        }
        let conn = self.journal.conn();
        if let Some(sql) = self.dropped_index.take() {
            conn.execute_batch(&sql)?;
        }
        if imported {
            conn.execute(
                "UPDATE batches SET imported = 1 WHERE id = ?1",
                [self.batch],
            )?;
        }
        conn.execute_batch("COMMIT")?;
        self.in_transaction = false;
        self.journal.check_file()
    }

    /// Commits what was written so far, leaving the batch unusable (an import interrupted
    /// after this point is removed when the journal is next opened).
    pub fn commit(&mut self) -> Result<(), JournalError> {
        self.commit_with(false)
    }

    /// Commits the import and marks the batch usable, at once.
    pub fn finish(mut self) -> Result<u64, JournalError> {
        self.commit_with(true)?;
        Ok(self.count)
    }
}

impl Drop for Import<'_> {
    fn drop(&mut self) {
        let conn = self.journal.conn();
        if self.in_transaction {
            let _ = conn.execute_batch("ROLLBACK");
        }
        let _ = conn.pragma_update(None, "cache_size", -DEFAULT_CACHE_KIB);
    }
}
