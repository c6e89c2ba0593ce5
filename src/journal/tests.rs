//! The journal's own tests: locking, privacy, schema versions, the write protocol, queries.

use std::sync::Arc;

use rusqlite::Connection;

use super::*;
use crate::ids::{AssignmentId, WorkerId};
use crate::input::Row;
use crate::money::Cents;
use crate::op::{Operation, Origin};
use crate::plan::{PlanConfig, PlannedItem};
use crate::target::Target;

pub(crate) fn rows(n: u64) -> Vec<Row> {
    (0..n)
        .map(|i| Row {
            origin: Origin::line(i + 2),
            op: Operation::Bonus {
                worker: WorkerId::parse(&format!("A{i}")).unwrap(),
                assignment: AssignmentId::parse(&format!("X{i}")).unwrap(),
                amount: Cents(100 + i),
                reason: "thanks".into(),
            },
        })
        .collect()
}

pub(crate) fn config(target: Target) -> PlanConfig {
    PlanConfig {
        kind: BatchKind::Bonus,
        target,
        endpoint: None,
        allow_repeat: false,
        allow_overlap: false,
        allow_duplicates: false,
    }
}

/// Plans `rows` against the journal's ledger and records the batch.
pub(crate) fn record(
    j: &mut Journal,
    rows: Vec<Row>,
    config: PlanConfig,
    source: &str,
) -> (BatchInfo, Vec<PlannedItem>) {
    crate::plan::plan_and_record(j, rows, config, source).unwrap()
}

#[test]
fn second_open_is_refused_while_the_first_holds_the_lock_by_any_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let _first = Journal::open(&path).unwrap();
    assert!(matches!(Journal::open(&path), Err(JournalError::Locked(_))));
    // The lock is on the file, not on the path that reached it.
    let link = dir.path().join("link.sqlite");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(matches!(Journal::open(&link), Err(JournalError::Locked(_))));
    let hard = dir.path().join("hard.sqlite");
    std::fs::hard_link(&path, &hard).unwrap();
    assert!(matches!(Journal::open(&hard), Err(JournalError::Locked(_))));
}

#[test]
fn journal_files_are_private_and_a_readable_one_is_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/j.sqlite");
    drop(Journal::open(&path).unwrap());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut j = Journal::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let warnings = j.take_warnings();
    assert!(warnings[0].contains("made it private"), "{warnings:?}");
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
    assert!(matches!(
        Journal::open_read_only(&path),
        Err(JournalError::TooNew { found: 99, .. })
    ));
}

#[test]
fn another_database_or_file_is_not_taken_for_a_journal() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.sqlite");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE photos (id INTEGER);")
        .unwrap();
    assert!(matches!(
        Journal::open(&other),
        Err(JournalError::NotAJournal(_))
    ));
    // Nothing was added to it.
    let tables: i64 = Connection::open(&other)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 1);
    let csv = dir.path().join("bonuses.csv");
    std::fs::write(
        &csv,
        "WorkerId,AssignmentId,BonusAmount,Reason\n".repeat(200),
    )
    .unwrap();
    assert!(matches!(
        Journal::open(&csv),
        Err(JournalError::NotAJournal(_))
    ));
    assert!(matches!(
        Journal::open_read_only(&csv),
        Err(JournalError::NotAJournal(_))
    ));
}

#[test]
fn a_journal_deleted_or_replaced_while_open_is_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let mut j = Journal::open(&path).unwrap();
    let (b, _) = record(&mut j, rows(2), config(Target::Emulator), "a.csv");
    j.check_file().unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(j.check_file(), Err(JournalError::Replaced(_))));
    let w = j.into_writer();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = rt
        .block_on(w.write(Write::BeginAttempt {
            batch: b.id,
            seq: 0,
        }))
        .unwrap_err();
    assert!(err.to_string().contains("deleted or replaced"), "{err}");
    // A path that now leads to another file is the same failure.
    let path2 = dir.path().join("k.sqlite");
    let j = Journal::open(&path2).unwrap();
    std::fs::write(dir.path().join("copy"), b"another file").unwrap();
    std::fs::rename(dir.path().join("copy"), &path2).unwrap();
    assert!(matches!(j.check_file(), Err(JournalError::Replaced(_))));
}

#[tokio::test]
async fn in_flight_becomes_unknown_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let mut j = Journal::open(&path).unwrap();
    let (b, _) = record(&mut j, rows(3), config(Target::Emulator), "b.csv");
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
async fn writes_are_grouped_and_all_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let mut j = Journal::open(&path).unwrap();
    let (b, _) = record(&mut j, rows(200), config(Target::Emulator), "a.csv");
    let w = Arc::new(j.into_writer());
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
                n: n as u32,
                outcome: "done",
                message: None,
                state: ItemState::Done,
                note: None,
            })
            .await
            .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let j = Arc::try_unwrap(w).ok().unwrap().finish();
    let items = j.items(b.id).unwrap();
    assert_eq!(items.len(), 200);
    assert!(
        items
            .iter()
            .all(|i| i.state == ItemState::Done && i.attempts == 1)
    );
    let attempts: i64 = j
        .conn()
        .query_row(
            "SELECT COUNT(*) FROM attempts WHERE outcome = 'done'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(attempts, 200);
}

#[test]
fn pages_of_open_items_come_through_the_partial_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    let (b, _) = record(&mut j, rows(50), config(Target::Emulator), "a.csv");
    for seq in 0..45 {
        j.write(&Write::Resolve {
            batch: b.id,
            seq,
            state: ItemState::Done,
            note: "t".into(),
        })
        .unwrap();
    }
    let open = j.items_page(b.id, None, 100, ItemFilter::Open).unwrap();
    assert_eq!(
        open.iter().map(|i| i.seq).collect::<Vec<_>>(),
        vec![45, 46, 47, 48, 49]
    );
    let plan: String = j
        .conn()
        .query_row(
            &format!(
                "EXPLAIN QUERY PLAN SELECT seq FROM items INDEXED BY items_open WHERE batch_id = 1
                 AND seq > -1 AND state IN {OPEN_STATES} AND state = 'pending'
                 ORDER BY seq"
            ),
            [],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("items_open"), "{plan}");
}

/// The one SQL list of open states is what [`ItemState::is_open`] says, and the conditions of
/// the partial indexes (frozen in the migrations) are written the same way, word for word.
#[test]
fn the_sql_lists_of_states_are_the_states_and_the_indexes_conditions() {
    let list = |keep: fn(ItemState) -> bool| {
        let names: Vec<String> = ItemState::ALL
            .into_iter()
            .filter(|s| keep(*s))
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        format!("({})", names.join(", "))
    };
    assert_eq!(OPEN_STATES, list(ItemState::is_open));
    assert_eq!(
        UNSETTLED_STATES,
        list(|s| matches!(s, ItemState::InFlight | ItemState::Unknown))
    );
    let schema = MIGRATIONS.concat();
    assert!(schema.contains(&format!(
        "items_open ON items (batch_id, seq) WHERE state IN {OPEN_STATES};"
    )));
    assert!(schema.contains(&format!(
        "items_unsettled ON items (batch_id, seq) WHERE state IN {UNSETTLED_STATES};"
    )));
}

#[test]
fn summaries_come_from_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    let (b, _) = record(&mut j, rows(4), config(Target::Emulator), "a.csv");
    j.write(&Write::Resolve {
        batch: b.id,
        seq: 0,
        state: ItemState::Done,
        note: "t".into(),
    })
    .unwrap();
    let counts = j.kind_state_counts(b.id).unwrap();
    let done = counts.iter().find(|c| c.state == ItemState::Done).unwrap();
    assert_eq!(
        (done.count, done.amount, done.fee),
        (1, Cents(100), Cents(20))
    );
    let pending = counts
        .iter()
        .find(|c| c.state == ItemState::Pending)
        .unwrap();
    assert_eq!(pending.count, 3);
    assert_eq!(pending.amount, Cents(101 + 102 + 103));
    assert_eq!(j.distinct_workers(b.id).unwrap(), 4);
}

#[test]
fn closing_a_batch_cancels_its_pending_items_but_not_while_any_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let mut j = Journal::open(&path).unwrap();
    let (b, _) = record(&mut j, rows(3), config(Target::Emulator), "a.csv");
    j.write(&Write::Resolve {
        batch: b.id,
        seq: 0,
        state: ItemState::Unknown,
        note: "t".into(),
    })
    .unwrap();
    let close = Write::Close {
        batch: b.id,
        how: CloseKind::Cancelled,
        by: None,
    };
    assert!(j.write(&close).is_err());
    j.write(&Write::Resolve {
        batch: b.id,
        seq: 0,
        state: ItemState::Done,
        note: "verified".into(),
    })
    .unwrap();
    j.write(&close).unwrap();
    let states: Vec<ItemState> = j.items(b.id).unwrap().iter().map(|i| i.state).collect();
    assert_eq!(
        states,
        vec![ItemState::Done, ItemState::Cancelled, ItemState::Cancelled]
    );
    let closed = j.batch_by_id(b.id).unwrap().unwrap().closed.unwrap();
    assert_eq!(closed.how, CloseKind::Cancelled);
    // A closed batch is found by name, but not by fingerprint and not for resuming.
    assert!(j.batch_by_fingerprint(&b.fingerprint).unwrap().is_none());
    assert!(j.latest_batch(true).unwrap().is_none());
}

#[test]
fn every_operation_kind_round_trips_through_its_columns() {
    use crate::ids::QualificationTypeId;
    use crate::op::QualRef;
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    let w = WorkerId::parse("A1").unwrap();
    let ops = vec![
        Operation::Score {
            worker: w.clone(),
            qualification: QualRef::Name("Past participants".into()),
            value: -7,
            notify: true,
        },
        Operation::Revoke {
            worker: w.clone(),
            qualification: QualRef::Id(
                QualificationTypeId::parse("3QUALIFICATIONTYPE0000000001").unwrap(),
            ),
            reason: Some("left the panel".into()),
        },
        Operation::Block {
            worker: WorkerId::parse("A2").unwrap(),
            reason: "spam".into(),
        },
        Operation::Unblock {
            worker: WorkerId::parse("A3").unwrap(),
            reason: None,
        },
    ];
    let rows: Vec<Row> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| Row {
            origin: Origin {
                line: i as u64 + 2,
                column: Some("UPDATE-Panel".into()),
            },
            op: op.clone(),
        })
        .collect();
    let mut cfg = config(Target::Sandbox);
    cfg.kind = BatchKind::Qualification;
    let (b, _) = record(&mut j, rows, cfg, "q.csv");
    let back: Vec<Operation> = j.items(b.id).unwrap().into_iter().map(|i| i.op).collect();
    assert_eq!(back, ops);
    assert_eq!(
        j.items(b.id).unwrap()[0].origin.column.as_deref(),
        Some("UPDATE-Panel")
    );
    assert_eq!(
        j.qualification_names(b.id).unwrap(),
        vec!["Past participants"]
    );
}

#[test]
fn a_batch_whose_import_was_interrupted_is_removed_and_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let mut j = Journal::open(&path).unwrap();
    let (batch, items) = batch_to_import(&mut j, 5);
    j.insert_items(batch.id, &items[..3]).unwrap();
    // Not found while importing, and gone once the process that imported it is.
    assert!(
        j.batch_by_fingerprint(&batch.fingerprint)
            .unwrap()
            .is_none()
    );
    drop(j);
    let j = Journal::open(&path).unwrap();
    assert!(j.batch_by_id(batch.id).unwrap().is_none());
    assert!(j.items(batch.id).unwrap().is_empty());
}

#[test]
fn a_batch_being_imported_is_not_history_of_itself() {
    use crate::plan::Prior;
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    let cfg = config(Target::Emulator);
    let ledger = crate::target::ledger(cfg.target, None);
    let (batch, items) = batch_to_import(&mut j, 5);
    // The first chunk is in; the rest of the file is planned against the ledger.
    j.insert_items(batch.id, &items[..3]).unwrap();
    let mut own = j.prior_excluding(&ledger, batch.id).unwrap();
    assert!(
        !own.has_history(),
        "nothing but the batch itself is on the ledger"
    );
    assert!(own.same_ops(&items[0].op).unwrap().is_empty());
    // A batch planned before this one is recorded still sees it.
    let mut before = j.prior(&ledger).unwrap();
    assert!(before.has_history());
    assert_eq!(before.same_ops(&items[0].op).unwrap().len(), 1);
    // With another batch on the ledger, the importing batch's own items stay out of the
    // answers (they would count as overlaps, and renumber deliberate repeats).
    let other = rows(8).split_off(5);
    record(&mut j, other, cfg, "other.csv");
    let mut own = j.prior_excluding(&ledger, batch.id).unwrap();
    assert!(own.has_history());
    assert!(own.same_ops(&items[0].op).unwrap().is_empty());
    assert!(
        own.group_elsewhere(&items[1].op.group())
            .unwrap()
            .is_empty()
    );
}

/// A batch recorded and not yet imported, with its items planned.
fn batch_to_import(j: &mut Journal, n: u64) -> (BatchInfo, Vec<PlannedItem>) {
    let cfg = config(Target::Emulator);
    let (items, summary) =
        crate::plan::plan_rows(rows(n), cfg.clone(), &mut crate::plan::NoPrior).unwrap();
    let batch = j
        .insert_batch(&NewBatch {
            fingerprint: summary.fingerprint,
            content_digest: summary.content_digest,
            kind: cfg.kind,
            target: cfg.target,
            endpoint: None,
            source: "big.csv".into(),
            options: BatchOptions::default(),
        })
        .unwrap();
    (batch, items)
}

/// How SQLite would find the items of a group.
fn group_query_plan(j: &Journal) -> String {
    j.conn()
        .query_row(
            "EXPLAIN QUERY PLAN SELECT seq FROM items WHERE group_hash = 7",
            [],
            |r| r.get(3),
        )
        .unwrap()
}

#[test]
fn an_import_writes_every_row_in_statements_of_many_rows_bulk_or_not() {
    for bulk in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        // 200 rows: three full statements and a short one.
        let (batch, items) = batch_to_import(&mut j, 200);
        let mut import = j.import(batch.id, bulk).unwrap();
        for item in &items {
            import.push(item.clone()).unwrap();
        }
        assert_eq!(import.finish().unwrap(), 200);
        let back = j.items(batch.id).unwrap();
        assert_eq!(back.len(), items.len(), "bulk: {bulk}");
        for (sent, read) in items.iter().zip(&back) {
            assert_eq!(sent.seq, read.seq);
            assert_eq!(sent.origin, read.origin);
            assert!(sent.op.same_as(&read.op), "{:?} {:?}", sent.op, read.op);
            assert_eq!(sent.token, read.token);
            assert_eq!(sent.fee, read.fee);
            assert_eq!(sent.occurrence, read.occurrence);
            assert_eq!(sent.state, read.state);
        }
        assert!(
            j.batch_by_id(batch.id).unwrap().is_some(),
            "usable once imported"
        );
        // The group index is back (a bulk import built it again) and finds the batch's rows.
        assert!(group_query_plan(&j).contains("items_group"), "bulk: {bulk}");
        let ledger = crate::target::ledger(Target::Emulator, None);
        let mut prior = j.prior(&ledger).unwrap();
        use crate::plan::Prior;
        assert_eq!(prior.same_ops(&items[150].op).unwrap().len(), 1);
        assert_eq!(
            prior.group_elsewhere(&items[199].op.group()).unwrap().len(),
            1
        );
    }
}

#[test]
fn an_interrupted_bulk_import_rolls_back_whole_its_index_included() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let mut j = Journal::open(&path).unwrap();
    let (_, earlier) = record(&mut j, rows(3), config(Target::Emulator), "a.csv");
    let (batch, items) = batch_to_import(&mut j, 300);
    let mut import = j.import(batch.id, true).unwrap();
    for item in &items[..250] {
        import.push(item.clone()).unwrap();
    }
    // The process stops here: nothing of the import stays, and the index is whole.
    drop(import);
    assert!(j.items(batch.id).unwrap().is_empty());
    assert!(group_query_plan(&j).contains("items_group"));
    drop(j);
    let j = Journal::open(&path).unwrap();
    assert!(j.batch_by_id(batch.id).unwrap().is_none());
    let ledger = crate::target::ledger(Target::Emulator, None);
    let mut prior = j.prior(&ledger).unwrap();
    use crate::plan::Prior;
    assert_eq!(prior.same_ops(&earlier[2].op).unwrap().len(), 1);
}

#[test]
fn nothing_of_an_import_is_visible_until_it_is_finished() {
    for bulk in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.sqlite");
        let mut j = Journal::open(&path).unwrap();
        let (batch, items) = batch_to_import(&mut j, 200);
        let reader = Journal::open_read_only(&path).unwrap();
        let visible = |r: &Journal| -> i64 {
            r.conn()
                .query_row(
                    "SELECT COUNT(*) FROM items WHERE batch_id = ?1",
                    [batch.id],
                    |row| row.get(0),
                )
                .unwrap()
        };
        let mut import = j.import(batch.id, bulk).unwrap();
        for item in &items {
            import.push(item.clone()).unwrap();
        }
        // Three statements of 64 rows are in; none of it is seen elsewhere.
        assert_eq!(visible(&reader), 0, "bulk: {bulk}");
        import.finish().unwrap();
        assert_eq!(visible(&reader), 200, "bulk: {bulk}");
        assert!(
            reader.batch_by_id(batch.id).unwrap().is_some(),
            "bulk: {bulk}"
        );
    }
}

#[test]
fn a_bulk_import_is_chosen_only_when_it_outweighs_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    assert!(!j.bulk_import_pays(BULK_IMPORT_ROWS - 1).unwrap());
    assert!(j.bulk_import_pays(BULK_IMPORT_ROWS).unwrap());
    // Rebuilding the index sorts the whole journal: not for an import smaller than it.
    let (batch, _) = batch_to_import(&mut j, 1);
    j.conn()
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
             INSERT INTO items (batch_id, seq, line, kind, group_hash, op_hash, worker_id,
                                occurrence, state)
             SELECT ?1, i, i + 2, 'block', i, i, 'A' || i, 0, 'done' FROM n",
            rusqlite::params![batch.id, BULK_IMPORT_ROWS as i64 + 10],
        )
        .unwrap();
    assert!(!j.bulk_import_pays(BULK_IMPORT_ROWS).unwrap());
    assert!(j.bulk_import_pays(2 * BULK_IMPORT_ROWS + 20).unwrap());
}

/// The planner carries the journal's errors without knowing their type; each comes back whole.
#[test]
fn a_journal_error_through_the_planner_comes_back_as_itself() {
    let back = JournalError::from(crate::plan::PriorError::from(JournalError::WriterGone));
    assert!(matches!(back, JournalError::WriterGone), "{back:?}");
}
