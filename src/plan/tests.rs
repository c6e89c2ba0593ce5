//! The planner's tests: totals, occurrences, tokens, fingerprints, skips and overlaps.

use proptest::prelude::*;

use super::*;
use crate::ids::{AssignmentId, WorkerId};
use crate::journal::tests::{config, record, rows as journal_rows};
use crate::journal::{Journal, Write};

fn bonus(line: u64, w: &str, a: &str, cents: u64, reason: &str) -> Row {
    Row {
        origin: Origin::line(line),
        op: Operation::Bonus {
            worker: WorkerId::parse(w).unwrap(),
            assignment: AssignmentId::parse(a).unwrap(),
            amount: Cents(cents),
            reason: reason.into(),
        },
    }
}

fn plan(rows: Vec<Row>, target: Target, allow_repeat: bool) -> (Vec<PlannedItem>, PlanSummary) {
    let mut cfg = config(target);
    cfg.allow_repeat = allow_repeat;
    cfg.allow_duplicates = true;
    plan_rows(rows, cfg, &mut NoPrior).unwrap()
}

#[test]
fn totals_fees_and_occurrences() {
    let rows = vec![
        bonus(2, "A1", "X1", 100, "r"),
        bonus(3, "A1", "X1", 100, "r"),
        bonus(4, "A2", "X2", 7, "r"),
    ];
    let (items, s) = plan(rows, Target::Sandbox, false);
    assert_eq!(s.totals.operations, 3);
    assert_eq!(s.totals.bonuses, 3);
    assert_eq!(s.totals.workers, 2);
    assert_eq!(s.totals.bonus, Cents(207));
    assert_eq!(s.totals.fee, Cents(20 + 20 + 1));
    assert_eq!(s.totals.grand_total(), Cents(248));
    let occ: Vec<u32> = items.iter().map(|i| i.occurrence).collect();
    assert_eq!(occ, vec![0, 1, 0]);
    assert_ne!(items[0].token, items[1].token);
}

#[test]
fn tokens_are_stable_distinct_and_short() {
    let one = || vec![bonus(2, "A1", "X1", 100, "r")];
    let (a, _) = plan(one(), Target::Sandbox, false);
    let (b, _) = plan(one(), Target::Sandbox, false);
    let t = a[0].token.clone().unwrap();
    assert_eq!(Some(t.clone()), b[0].token);
    assert!(t.len() <= 64);
    let (c, _) = plan(one(), Target::Production, false);
    assert_ne!(Some(t), c[0].token);
}

#[test]
fn fingerprint_depends_on_target_rows_and_variant_and_the_digest_only_on_rows() {
    let rows = || vec![bonus(2, "A1", "X1", 100, "r")];
    let (_, a) = plan(rows(), Target::Sandbox, false);
    let (_, same) = plan(rows(), Target::Sandbox, false);
    let (_, prod) = plan(rows(), Target::Production, false);
    let (_, repeat) = plan(rows(), Target::Sandbox, true);
    let (_, other) = plan(
        vec![bonus(2, "A1", "X1", 100, "r2")],
        Target::Sandbox,
        false,
    );
    assert_eq!(a.fingerprint, same.fingerprint);
    assert_ne!(a.fingerprint, prod.fingerprint);
    assert_ne!(a.fingerprint, repeat.fingerprint);
    assert_ne!(a.fingerprint, other.fingerprint);
    // The content digest is what a rehearsal proves: the same on every target.
    assert_eq!(a.content_digest, prod.content_digest);
    assert_ne!(a.content_digest, other.content_digest);
}

#[test]
fn bonus_fingerprints_are_those_payout_0_1_computed() {
    // payout 0.1: sha256("payout-batch-v1␟" target "␟" variant, then per row "␞" fields).
    let (_, s) = plan(vec![bonus(2, "A1", "X1", 100, "r")], Target::Sandbox, false);
    let mut h = Sha256::new();
    h.update(b"payout-batch-v1\x1fsandbox\x1frepeat=false\x1fendpoint=");
    h.update(b"\x1eA1\x1fX1\x1f100\x1fr\x1f0");
    assert_eq!(s.fingerprint, hex::encode(h.finalize()));
}

#[test]
fn an_operation_done_by_an_earlier_batch_is_skipped_unless_repeat_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    let (first, _) = record(&mut j, journal_rows(2), config(Target::Emulator), "a.csv");
    j.write(&Write::Resolve {
        batch: first.id,
        seq: 0,
        state: ItemState::Done,
        note: "test".into(),
    })
    .unwrap();
    // The first batch is closed so that its open row is no overlap here.
    j.write(&Write::Resolve {
        batch: first.id,
        seq: 1,
        state: ItemState::Done,
        note: "test".into(),
    })
    .unwrap();
    let (_, items) = record(&mut j, journal_rows(3), config(Target::Emulator), "b.csv");
    assert_eq!(items[0].state, ItemState::Skipped);
    assert!(
        items[0].note.as_deref().unwrap().contains("a-"),
        "{items:?}"
    );
    assert_eq!(items[2].state, ItemState::Pending);
    let mut repeat = config(Target::Emulator);
    repeat.allow_repeat = true;
    let (_, again) = record(&mut j, journal_rows(1), repeat, "c.csv");
    assert_eq!(again[0].state, ItemState::Pending);
    assert_ne!(again[0].token, items[0].token);
    // Another target is another world.
    let (_, sandbox) = record(&mut j, journal_rows(1), config(Target::Sandbox), "a.csv");
    assert_eq!(sandbox[0].state, ItemState::Pending);
    // And so is another endpoint: an emulator reached with --endpoint-url is not the target.
    let mut elsewhere = config(Target::Emulator);
    elsewhere.endpoint = Some(crate::target::Endpoint::parse("http://127.0.0.1:9").unwrap());
    let (_, other) = record(&mut j, journal_rows(1), elsewhere, "a.csv");
    assert_eq!(other[0].state, ItemState::Pending);
}

#[test]
fn overlaps_with_unfinished_batches_and_assignments_already_paid_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
    let cfg = config(Target::Emulator);
    // An interrupted batch: line 2 paid $1.00, line 3 still open.
    let (old, _) = record(
        &mut j,
        vec![
            bonus(2, "A1", "X1", 100, "r"),
            bonus(3, "A2", "X2", 100, "r"),
        ],
        cfg.clone(),
        "old.csv",
    );
    j.write(&Write::Resolve {
        batch: old.id,
        seq: 0,
        state: ItemState::Done,
        note: "t".into(),
    })
    .unwrap();
    // The file edited: both amounts changed, and a new row.
    let ledger = crate::target::ledger(Target::Emulator, None);
    let edited = vec![
        bonus(2, "A1", "X1", 150, "r"),
        bonus(3, "A2", "X2", 150, "r"),
        bonus(4, "A3", "X3", 100, "r"),
    ];
    let (_, s) = plan_rows(edited.clone(), cfg.clone(), &mut j.prior(&ledger).unwrap()).unwrap();
    assert_eq!(s.overlap_count, 2, "{:#?}", s.overlaps);
    assert_eq!(s.overlaps[0].reason, OverlapReason::AlreadyPaid);
    assert_eq!(s.overlaps[0].origin, Origin::line(2));
    assert_eq!(s.overlaps[0].other_batch, old.name);
    assert!(
        s.overlaps[0].other_what.contains("$1.00"),
        "{:?}",
        s.overlaps[0]
    );
    assert_eq!(s.overlaps[1].reason, OverlapReason::Unfinished);
    assert_eq!(s.overlapping_batches, vec![old.name.clone()]);
    // --allow-overlap accepts further bonuses for paid assignments, never unfinished ones.
    let mut allow = cfg;
    allow.allow_overlap = true;
    let (_, s) = plan_rows(edited, allow, &mut j.prior(&ledger).unwrap()).unwrap();
    assert_eq!(s.overlap_count, 1);
    assert_eq!(s.overlaps[0].reason, OverlapReason::Unfinished);
}

proptest! {
    #[test]
    fn plan_totals_equal_the_sum_of_rows(amounts in proptest::collection::vec(1u64..1_000_000, 1..50)) {
        let rows: Vec<Row> = amounts.iter().enumerate()
            .map(|(i, c)| bonus(i as u64 + 2, &format!("A{}", i % 7), &format!("X{i}"), *c, "r"))
            .collect();
        let (_, s) = plan(rows, Target::Sandbox, false);
        prop_assert_eq!(s.totals.bonus.0, amounts.iter().sum::<u64>());
        prop_assert_eq!(s.totals.fee.0, amounts.iter().map(|c| crate::platform::bonus_fee(Cents(*c)).0).sum::<u64>());
        prop_assert_eq!(s.totals.operations as usize, amounts.len());
    }
}

#[test]
fn a_state_is_needless_only_when_the_latest_decision_on_its_group_is_the_same() {
    use crate::op::QualRef;
    let w = || WorkerId::parse("A1").unwrap();
    let q = || QualRef::Name("Panel".into());
    let score = |value, notify| Operation::Score {
        worker: w(),
        qualification: q(),
        value,
        notify,
    };
    let revoke = Operation::Revoke {
        worker: w(),
        qualification: q(),
        reason: None,
    };
    assert!(decides_same(&score(5, false), &score(5, false)));
    assert!(decides_same(&score(5, true), &score(5, false)));
    assert!(decides_same(&score(5, true), &score(5, true)));
    // Granted quietly, asked with an e-mail: the e-mail is sent.
    assert!(!decides_same(&score(5, false), &score(5, true)));
    assert!(!decides_same(&score(5, false), &score(6, false)));
    assert!(!decides_same(&score(5, false), &revoke));
    assert!(decides_same(&revoke, &revoke));
    let block = Operation::Block {
        worker: w(),
        reason: "r".into(),
    };
    let unblock = Operation::Unblock {
        worker: w(),
        reason: None,
    };
    assert!(decides_same(&block, &block));
    assert!(!decides_same(&unblock, &block));
}
