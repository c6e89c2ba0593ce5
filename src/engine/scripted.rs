//! The engine's decisions against a scripted platform: what is sent, what is verified, what is
//! never sent again. The journal is real SQLite.

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Run;
use super::*;
use crate::ids::{AssignmentId, QualificationTypeId, WorkerId};
use crate::input::Row;
use crate::journal::tests::{config, record};
use crate::journal::{BatchInfo, ItemRecord, ItemState, Journal, Write};
use crate::money::Cents;
use crate::op::{Operation, Origin, QualRef};
use crate::pace::{PaceConfig, Pacer};
use crate::platform::{
    AssignmentInfo, Balance, Call, ErrorClass, PaidBonus, Platform, PlatformError, QualScore,
    Systemic,
};
use crate::target::Target;

/// What the scripted platform does with the next `apply`.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Apply it and answer this error (a 5xx after the write, a lost answer).
    ApplyThen(ErrorClass),
    /// Answer this error without applying anything.
    Fail(ErrorClass),
    /// Answer this error, without applying anything, after a while (a slow dropped connection).
    FailLate(ErrorClass, Duration),
    /// Apply it at once, answer success after a while (a slow answer).
    ApplyAnswerLate(Duration),
}

#[derive(Default)]
struct Fake {
    bonuses: Mutex<Vec<PaidBonus>>,
    scores: Mutex<Vec<(String, String, QualScore)>>,
    blocked: Mutex<HashSet<String>>,
    script: Mutex<VecDeque<Step>>,
    /// Steps for the calls carrying a given request token, before the shared script.
    by_token: Mutex<std::collections::HashMap<String, VecDeque<Step>>>,
    applies: Mutex<Vec<String>>,
    lookups: Mutex<u64>,
    /// Stops the run as the scripted answer is given (Ctrl-C while a retry waits).
    stop_after_script: Mutex<Option<Arc<StopSignal>>>,
}

fn err(class: ErrorClass) -> PlatformError {
    PlatformError {
        class,
        code: Some("Scripted".into()),
        message: format!("scripted {class:?}"),
    }
}

impl Fake {
    fn with_script(steps: &[Step]) -> Fake {
        let f = Fake::default();
        f.script.lock().unwrap().extend(steps.iter().copied());
        f
    }

    fn perform(&self, call: &Call<'_>) {
        match call.op {
            Operation::Bonus {
                worker,
                assignment,
                amount,
                reason,
            } => self.bonuses.lock().unwrap().push(PaidBonus {
                worker: worker.to_string(),
                assignment: assignment.to_string(),
                amount: Some(*amount),
                reason: reason.clone(),
            }),
            Operation::Score { worker, value, .. } => {
                let q = call.qualification.unwrap().to_string();
                let mut s = self.scores.lock().unwrap();
                s.retain(|(w, t, _)| !(w == worker.as_str() && *t == q));
                s.push((worker.to_string(), q, QualScore::Granted(*value)));
            }
            Operation::Revoke { worker, .. } => {
                let q = call.qualification.unwrap().to_string();
                let mut s = self.scores.lock().unwrap();
                s.retain(|(w, t, _)| !(w == worker.as_str() && *t == q));
                s.push((worker.to_string(), q, QualScore::Revoked));
            }
            Operation::Block { worker, .. } => {
                self.blocked.lock().unwrap().insert(worker.to_string());
            }
            Operation::Unblock { worker, .. } => {
                self.blocked.lock().unwrap().remove(worker.as_str());
            }
        }
    }

    fn applies(&self) -> Vec<String> {
        self.applies.lock().unwrap().clone()
    }

    fn lookups(&self) -> u64 {
        *self.lookups.lock().unwrap()
    }
}

impl Platform for Fake {
    async fn apply(&self, call: Call<'_>) -> Result<(), PlatformError> {
        let label = match call.op {
            Operation::Bonus { reason, .. } => format!("bonus {reason}"),
            op => format!("{} {}", op.kind(), op.worker()),
        };
        self.applies.lock().unwrap().push(label);
        let by_token = call
            .token
            .and_then(|t| self.by_token.lock().unwrap().get_mut(t)?.pop_front());
        let step = by_token.or_else(|| self.script.lock().unwrap().pop_front());
        let result = match step {
            None => {
                self.perform(&call);
                Ok(())
            }
            Some(Step::ApplyThen(class)) => {
                self.perform(&call);
                Err(err(class))
            }
            Some(Step::Fail(class)) => Err(err(class)),
            Some(Step::FailLate(class, after)) => {
                tokio::time::sleep(after).await;
                Err(err(class))
            }
            Some(Step::ApplyAnswerLate(after)) => {
                self.perform(&call);
                tokio::time::sleep(after).await;
                Ok(())
            }
        };
        if step.is_some()
            && self.script.lock().unwrap().is_empty()
            && let Some(stop) = self.stop_after_script.lock().unwrap().take()
        {
            stop.stop(StopReason::User);
        }
        result
    }

    async fn bonuses_for_assignment(
        &self,
        assignment: &AssignmentId,
    ) -> Result<Vec<PaidBonus>, PlatformError> {
        *self.lookups.lock().unwrap() += 1;
        Ok(self
            .bonuses
            .lock()
            .unwrap()
            .iter()
            .filter(|b| b.assignment == assignment.as_str())
            .cloned()
            .collect())
    }

    async fn qualification_score(
        &self,
        worker: &WorkerId,
        qualification: &QualificationTypeId,
    ) -> Result<QualScore, PlatformError> {
        *self.lookups.lock().unwrap() += 1;
        Ok(self
            .scores
            .lock()
            .unwrap()
            .iter()
            .find(|(w, q, _)| w == worker.as_str() && q == qualification.as_str())
            .map_or(QualScore::None, |(_, _, s)| *s))
    }

    async fn blocked_workers(&self) -> Result<Vec<String>, PlatformError> {
        *self.lookups.lock().unwrap() += 1;
        Ok(self.blocked.lock().unwrap().iter().cloned().collect())
    }

    async fn balance(&self) -> Result<Balance, PlatformError> {
        Ok(Balance {
            available: Cents(1_000_000),
            on_hold: None,
        })
    }

    async fn find_qualification_type(
        &self,
        _: &str,
    ) -> Result<Option<QualificationTypeId>, PlatformError> {
        Ok(None)
    }

    async fn create_qualification_type(
        &self,
        _: &str,
        _: &str,
    ) -> Result<QualificationTypeId, PlatformError> {
        Err(err(ErrorClass::Refused))
    }

    async fn assignment(&self, _: &AssignmentId) -> Result<Option<AssignmentInfo>, PlatformError> {
        Ok(None)
    }
}

fn bonus(line: u64, assignment: &str, cents: u64, reason: &str) -> Row {
    Row {
        origin: Origin::line(line),
        op: Operation::Bonus {
            worker: WorkerId::parse("A1").unwrap(),
            assignment: AssignmentId::parse(assignment).unwrap(),
            amount: Cents(cents),
            reason: reason.into(),
        },
    }
}

fn cfg() -> EngineConfig {
    EngineConfig {
        concurrency: 4,
        pace: PaceConfig::pinned(10_000.0),
        max_attempts: 5,
        read_attempts: 3,
        backoff_base: Duration::from_millis(1),
        backoff_cap: Duration::from_millis(2),
        seed: 1,
    }
}

/// One run of `batch` on the journal at `path` against `platform`.
async fn run(path: &Path, batch: &BatchInfo, platform: &Arc<Fake>, stop: Arc<StopSignal>) {
    run_with(path, batch, platform, stop, QualMap::default()).await
}

async fn run_with(
    path: &Path,
    batch: &BatchInfo,
    platform: &Arc<Fake>,
    stop: Arc<StopSignal>,
    quals: QualMap,
) {
    let journal = Arc::new(Journal::open(path).unwrap().into_writer());
    tokio::time::timeout(
        Duration::from_secs(20),
        execute(Run {
            platform: platform.clone(),
            journal: journal.clone(),
            batch: batch.clone(),
            quals,
            cfg: cfg(),
            pacer: Pacer::new(PaceConfig::pinned(10_000.0)),
            reporter: Arc::new(Silent),
            stop,
        }),
    )
    .await
    .expect("bounded")
    .unwrap();
    drop(Arc::try_unwrap(journal).ok().unwrap().finish());
}

fn items(path: &Path, batch: &BatchInfo) -> Vec<ItemRecord> {
    Journal::open(path).unwrap().items(batch.id).unwrap()
}

fn setup(rows: Vec<Row>) -> (tempfile::TempDir, std::path::PathBuf, BatchInfo) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let mut j = Journal::open(&path).unwrap();
    let (b, _) = record(&mut j, rows, config(Target::Sandbox), "b.csv");
    (dir, path, b)
}

#[tokio::test]
async fn applied_then_5xx_then_stop_then_a_resume_past_24_hours_verifies_and_does_not_resend() {
    let (_d, path, b) = setup(vec![bonus(2, "X1", 100, "r")]);
    let fake = Arc::new(Fake::with_script(&[Step::ApplyThen(ErrorClass::Ambiguous)]));
    let stop = Arc::new(StopSignal::default());
    *fake.stop_after_script.lock().unwrap() = Some(stop.clone());
    run(&path, &b, &fake, stop).await;
    assert_eq!(items(&path, &b)[0].state, ItemState::Unknown);
    // The fake keeps no tokens: as MTurk past its 24-hour window, it would pay a resend.
    run(&path, &b, &fake, Arc::new(StopSignal::default())).await;
    let it = &items(&path, &b)[0];
    assert_eq!(it.state, ItemState::Done, "{it:?}");
    assert_eq!(
        fake.applies().len(),
        1,
        "never sent again: {:?}",
        fake.applies()
    );
    assert_eq!(fake.bonuses.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_5xx_inside_a_run_is_verified_before_anything_is_sent_again() {
    // Applied, then 500: verified applied, not resent.
    let (_d, path, b) = setup(vec![bonus(2, "X1", 100, "r")]);
    let fake = Arc::new(Fake::with_script(&[Step::ApplyThen(ErrorClass::Ambiguous)]));
    run(&path, &b, &fake, Arc::new(StopSignal::default())).await;
    assert_eq!(items(&path, &b)[0].state, ItemState::Done);
    assert_eq!(fake.applies().len(), 1);
    assert_eq!(fake.lookups(), 1);
    // Dropped before it was applied: verified not applied, sent once more.
    let (_d, path, b) = setup(vec![bonus(2, "X1", 100, "r")]);
    let fake = Arc::new(Fake::with_script(&[Step::Fail(ErrorClass::Ambiguous)]));
    run(&path, &b, &fake, Arc::new(StopSignal::default())).await;
    assert_eq!(items(&path, &b)[0].state, ItemState::Done);
    assert_eq!(fake.applies().len(), 2);
    assert_eq!(fake.bonuses.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn same_amount_siblings_with_one_applied_pay_exactly_the_other_once() {
    let (_d, path, b) = setup(vec![
        bonus(2, "X1", 100, "round 1"),
        bonus(3, "X1", 100, "round 2"),
    ]);
    {
        // Both were sent and the process died; only round 2 reached MTurk.
        let w = Journal::open(&path).unwrap().into_writer();
        for seq in [0, 1] {
            w.write(Write::BeginAttempt { batch: b.id, seq })
                .await
                .unwrap();
        }
        drop(w.finish());
    }
    let fake = Arc::new(Fake::default());
    fake.bonuses.lock().unwrap().push(PaidBonus {
        worker: "A1".into(),
        assignment: "X1".into(),
        amount: Some(Cents(100)),
        reason: "round 2".into(),
    });
    run(&path, &b, &fake, Arc::new(StopSignal::default())).await;
    let its = items(&path, &b);
    assert!(its.iter().all(|i| i.state == ItemState::Done), "{its:#?}");
    assert_eq!(fake.applies(), vec!["bonus round 1"]);
    assert_eq!(fake.lookups(), 1, "the assignment was looked up once");
    let mut paid: Vec<String> = fake
        .bonuses
        .lock()
        .unwrap()
        .iter()
        .map(|b| b.reason.clone())
        .collect();
    paid.sort();
    assert_eq!(paid, vec!["round 1", "round 2"]);
}

#[tokio::test]
async fn a_duplicate_token_answer_with_no_listed_bonus_fails_with_a_manual_check_note() {
    let (_d, path, b) = setup(vec![bonus(2, "X1", 100, "r")]);
    let fake = Arc::new(Fake::with_script(&[Step::Fail(ErrorClass::AlreadyDone)]));
    run(&path, &b, &fake, Arc::new(StopSignal::default())).await;
    let it = &items(&path, &b)[0];
    assert_eq!(it.state, ItemState::Failed);
    assert!(
        it.note
            .as_deref()
            .unwrap()
            .contains("Check it on the requester website"),
        "{it:?}"
    );
    assert_eq!(fake.applies().len(), 1, "never sent again");
    // Listed after all: done, with the note saying how it was established.
    let (_d, path, b) = setup(vec![bonus(2, "X1", 100, "r")]);
    let fake = Arc::new(Fake::with_script(&[Step::ApplyThen(
        ErrorClass::AlreadyDone,
    )]));
    run(&path, &b, &fake, Arc::new(StopSignal::default())).await;
    assert_eq!(items(&path, &b)[0].state, ItemState::Done);
}

#[tokio::test]
async fn throttled_only_stays_plainly_pending_and_needs_no_lookup() {
    let (_d, path, b) = setup(vec![bonus(2, "X1", 100, "r")]);
    let fake = Arc::new(Fake::with_script(&[
        Step::Fail(ErrorClass::Throttled),
        Step::Fail(ErrorClass::Throttled),
    ]));
    let stop = Arc::new(StopSignal::default());
    *fake.stop_after_script.lock().unwrap() = Some(stop.clone());
    run(&path, &b, &fake, stop).await;
    let it = &items(&path, &b)[0];
    assert_eq!(it.state, ItemState::Pending, "{it:?}");
    assert_eq!(fake.lookups(), 0);
    // The next run just sends it.
    run(&path, &b, &fake, Arc::new(StopSignal::default())).await;
    assert_eq!(items(&path, &b)[0].state, ItemState::Done);
    assert_eq!(fake.lookups(), 0);
    assert_eq!(fake.applies().len(), 3);
}

#[tokio::test]
async fn a_systemic_refusal_stops_the_batch_and_leaves_the_rest_pending() {
    let (_d, path, b) = setup(
        (0..6)
            .map(|i| bonus(i + 2, &format!("X{i}"), 100, "r"))
            .collect(),
    );
    let fake = Arc::new(Fake::with_script(&[Step::Fail(ErrorClass::Systemic(
        Systemic::InsufficientFunds,
    ))]));
    let journal = Arc::new(Journal::open(&path).unwrap().into_writer());
    let mut c = cfg();
    c.concurrency = 1;
    let end = execute(Run {
        platform: fake.clone(),
        journal: journal.clone(),
        batch: b.clone(),
        quals: QualMap::default(),
        cfg: c,
        pacer: Pacer::new(PaceConfig::pinned(10_000.0)),
        reporter: Arc::new(Silent),
        stop: Arc::new(StopSignal::default()),
    })
    .await
    .unwrap();
    drop(Arc::try_unwrap(journal).ok().unwrap().finish());
    assert!(matches!(
        end.stop,
        Some(StopReason::Systemic(Systemic::InsufficientFunds, _))
    ));
    let its = items(&path, &b);
    assert!(
        its.iter().all(|i| i.state == ItemState::Pending),
        "{its:#?}"
    );
    assert_eq!(fake.applies().len(), 1);
}

#[tokio::test]
async fn another_batchs_unknown_operation_in_the_same_group_is_verified_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let mut j = Journal::open(&path).unwrap();
    let (a, _) = record(
        &mut j,
        vec![bonus(2, "X1", 100, "r")],
        config(Target::Sandbox),
        "a.csv",
    );
    j.write(&Write::BeginAttempt {
        batch: a.id,
        seq: 0,
    })
    .unwrap();
    // A second batch with the same payment, recorded while the first's answer was unknown
    // (payout 0.1 allowed it).
    let (b, _) = {
        let items = vec![crate::plan::PlannedItem {
            seq: 0,
            origin: Origin::line(2),
            op: bonus(2, "X1", 100, "r").op,
            occurrence: 0,
            token: None,
            fee: None,
            state: ItemState::Pending,
            note: None,
        }];
        let batch = j
            .insert_batch(&crate::journal::NewBatch {
                fingerprint: "other".into(),
                content_digest: "other".into(),
                kind: crate::journal::BatchKind::Bonus,
                target: Target::Sandbox,
                endpoint: None,
                source: "b.csv".into(),
                options: Default::default(),
            })
            .unwrap();
        j.insert_items(batch.id, &items).unwrap();
        j.finish_import(batch.id).unwrap();
        (batch, items)
    };
    drop(j);
    let fake = Arc::new(Fake::default());
    fake.bonuses.lock().unwrap().push(PaidBonus {
        worker: "A1".into(),
        assignment: "X1".into(),
        amount: Some(Cents(100)),
        reason: "r".into(),
    });
    run(&path, &b, &fake, Arc::new(StopSignal::default())).await;
    assert_eq!(items(&path, &a)[0].state, ItemState::Done);
    assert_eq!(items(&path, &b)[0].state, ItemState::Skipped);
    assert!(fake.applies().is_empty());
}

#[tokio::test]
async fn qualification_and_block_operations_are_verified_by_their_own_probes() {
    let w = |s: &str| WorkerId::parse(s).unwrap();
    let q = QualRef::Name("Panel".into());
    let id = QualificationTypeId::parse("3PANEL00000000000000000000000").unwrap();
    let rows = vec![
        Row {
            origin: Origin::line(2),
            op: Operation::Score {
                worker: w("A1"),
                qualification: q.clone(),
                value: 7,
                notify: true,
            },
        },
        Row {
            origin: Origin::line(3),
            op: Operation::Revoke {
                worker: w("A2"),
                qualification: q,
                reason: None,
            },
        },
        Row {
            origin: Origin::line(4),
            op: Operation::Block {
                worker: w("A3"),
                reason: "spam".into(),
            },
        },
    ];
    let (_d, path, b) = setup(rows);
    let fake = Arc::new(Fake::with_script(&[
        // The grant is applied and its answer lost: it must not be sent (and e-mailed) again.
        Step::ApplyThen(ErrorClass::Ambiguous),
        // The revoke is refused: the worker never held it, which is what was asked.
        Step::Fail(ErrorClass::Refused),
        // The block's answer is lost before it was applied: sent once more.
        Step::Fail(ErrorClass::Ambiguous),
    ]));
    let mut quals = QualMap::default();
    quals.insert("Panel".into(), id);
    let journal = Arc::new(Journal::open(&path).unwrap().into_writer());
    let mut c = cfg();
    c.concurrency = 1;
    execute(Run {
        platform: fake.clone(),
        journal: journal.clone(),
        batch: b.clone(),
        quals,
        cfg: c,
        pacer: Pacer::new(PaceConfig::pinned(10_000.0)),
        reporter: Arc::new(Silent),
        stop: Arc::new(StopSignal::default()),
    })
    .await
    .unwrap();
    drop(Arc::try_unwrap(journal).ok().unwrap().finish());
    let its = items(&path, &b);
    assert!(its.iter().all(|i| i.state == ItemState::Done), "{its:#?}");
    assert_eq!(
        fake.applies(),
        vec!["score A1", "revoke A2", "block A3", "block A3"]
    );
    assert!(its[1].note.as_deref().unwrap().contains("never granted"));
}

#[tokio::test]
async fn a_refusal_after_a_lost_answer_is_what_the_failed_row_says() {
    // Dropped before it was applied, verified not applied, sent again, refused.
    let (_d, path, b) = setup(vec![bonus(2, "X1", 100, "r")]);
    let fake = Arc::new(Fake::with_script(&[
        Step::Fail(ErrorClass::Ambiguous),
        Step::Fail(ErrorClass::Refused),
    ]));
    run(&path, &b, &fake, Arc::new(StopSignal::default())).await;
    let it = &items(&path, &b)[0];
    assert_eq!(it.state, ItemState::Failed);
    assert!(
        it.note.as_deref().unwrap().contains("scripted Refused"),
        "the refusal, not the verification before it: {it:?}"
    );
}

#[tokio::test]
async fn one_operation_of_a_group_at_a_time_keeps_identical_payments_apart() {
    // Two identical bonuses (a deliberate repeat): the first's connection drops slowly without
    // applying it, the second is applied at once but answered late. Were both under way
    // together, verifying the first would find the second's bonus and take it for its own.
    let rows = vec![bonus(2, "X1", 100, "r"), bonus(3, "X1", 100, "r")];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let mut j = Journal::open(&path).unwrap();
    let mut c = config(Target::Sandbox);
    c.allow_duplicates = true;
    let (b, planned) = record(&mut j, rows, c, "b.csv");
    drop(j);
    let fake = Arc::new(Fake::default());
    {
        let mut by = fake.by_token.lock().unwrap();
        let first = planned[0].token.clone().unwrap();
        let second = planned[1].token.clone().unwrap();
        by.insert(
            first,
            [Step::FailLate(
                ErrorClass::Ambiguous,
                Duration::from_millis(100),
            )]
            .into(),
        );
        by.insert(
            second,
            [Step::ApplyAnswerLate(Duration::from_millis(300))].into(),
        );
    }
    run(&path, &b, &fake, Arc::new(StopSignal::default())).await;
    let its = items(&path, &b);
    assert!(its.iter().all(|i| i.state == ItemState::Done), "{its:#?}");
    assert_eq!(
        fake.bonuses.lock().unwrap().len(),
        2,
        "both paid, each once: {:?}",
        fake.applies()
    );
}

/// Records a batch of `ops` with these states directly (as an older payout could have).
fn insert_states(j: &mut Journal, name: &str, ops: Vec<(Operation, ItemState)>) -> BatchInfo {
    let items: Vec<crate::plan::PlannedItem> = ops
        .into_iter()
        .enumerate()
        .map(|(i, (op, state))| crate::plan::PlannedItem {
            seq: i as u32,
            origin: Origin::line(i as u64 + 2),
            op,
            occurrence: 0,
            token: None,
            fee: None,
            state,
            note: None,
        })
        .collect();
    let batch = j
        .insert_batch(&crate::journal::NewBatch {
            fingerprint: name.into(),
            content_digest: name.into(),
            kind: crate::journal::BatchKind::Qualification,
            target: Target::Sandbox,
            endpoint: None,
            source: format!("{name}.csv"),
            options: Default::default(),
        })
        .unwrap();
    j.insert_items(batch.id, &items).unwrap();
    j.finish_import(batch.id).unwrap();
    batch
}

#[tokio::test]
async fn a_pending_state_is_skipped_at_run_time_only_for_the_same_latest_decision_made_since() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.sqlite");
    let mut j = Journal::open(&path).unwrap();
    let w = || WorkerId::parse("A1").unwrap();
    let block = || Operation::Block {
        worker: w(),
        reason: "spam".into(),
    };
    let unblock = || Operation::Unblock {
        worker: w(),
        reason: None,
    };
    // A block done before the batch was recorded is its plan's business, not the run's: the
    // plan weighed it (and what the platform shows now) and left the block to do.
    insert_states(&mut j, "first", vec![(block(), ItemState::Done)]);
    let second = insert_states(&mut j, "second", vec![(block(), ItemState::Pending)]);
    let third = insert_states(&mut j, "third", vec![(block(), ItemState::Pending)]);
    let fourth = insert_states(&mut j, "fourth", vec![(block(), ItemState::Pending)]);
    let unblocking = insert_states(&mut j, "unblocking", vec![(unblock(), ItemState::Pending)]);
    drop(j);
    let fake = Arc::new(Fake::default());
    run(&path, &second, &fake, Arc::new(StopSignal::default())).await;
    assert_eq!(items(&path, &second)[0].state, ItemState::Done);
    assert_eq!(fake.applies().len(), 1);
    // Blocked since the third was recorded, and that is the latest decision: skipped.
    run(&path, &third, &fake, Arc::new(StopSignal::default())).await;
    assert_eq!(items(&path, &third)[0].state, ItemState::Skipped);
    assert_eq!(fake.applies().len(), 1);
    // Unblocked since the fourth was recorded: its block is done again.
    run(&path, &unblocking, &fake, Arc::new(StopSignal::default())).await;
    assert!(!fake.blocked.lock().unwrap().contains("A1"));
    run(&path, &fourth, &fake, Arc::new(StopSignal::default())).await;
    assert_eq!(items(&path, &fourth)[0].state, ItemState::Done);
    assert!(fake.blocked.lock().unwrap().contains("A1"));
    assert_eq!(fake.applies().len(), 3);
}
