//! The chunked engine against a scripted set-up-then-pay platform (no token, amounts-only
//! read-back, payments that land later): what is set up, what is paid, what is never paid
//! again. The journal is real SQLite.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::*;
use crate::engine::{EngineConfig, Resolution, StopSignal};
use crate::ids::{BulkBonusId, StudyId, SubmissionId};
use crate::journal::chunks::{NewChunkRow, RowState, chunks_of, pays_of, row_counts};
use crate::journal::{Journal, JournalWriter};
use crate::money::{Cents, Currency, ExactMinor};
use crate::platform::{ChunkRow, ChunkedPlatform, ErrorClass, PlatformError, SetUpAnswer};

/// What the platform does with a set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetUpStep {
    Ok,
    /// Creates the set-up, then the answer is lost.
    LostAfter,
    Throttled,
    /// Answers an amount that is not the chunk's sum.
    WrongAmount,
}

/// What the platform does with a pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayStep {
    Ok,
    /// Queues the payment, then the answer is lost (or a 5xx, a 429: the class says).
    ApplyThen(ErrorClass),
    /// Answers this error without queueing anything.
    Fail(ErrorClass),
    /// Accepts, and the payment lands only after this many read-backs.
    Late(u32),
    /// Queues the payment and never answers (the process is killed meanwhile).
    Hang,
}

#[derive(Default)]
struct Prolificish {
    bonuses: Mutex<BTreeMap<SubmissionId, Vec<ExactMinor>>>,
    set_ups: Mutex<BTreeMap<String, Vec<ChunkRow>>>,
    pays: Mutex<BTreeMap<String, u32>>,
    /// Payments queued, landing after this many more read-backs.
    queued: Mutex<Vec<(u32, String)>>,
    next_id: AtomicU64,
    set_up_script: Mutex<VecDeque<SetUpStep>>,
    pay_script: Mutex<VecDeque<PayStep>>,
    /// Random faults: (seed state, probability of a fault) when the scripts are empty.
    chaos: Mutex<Option<(fastrand::Rng, f64)>>,
    money_calls_in_flight: AtomicU64,
    overlapping_money_calls: AtomicU64,
    hung: Notify,
    hanging: AtomicBool,
}

fn err(class: ErrorClass) -> PlatformError {
    PlatformError {
        class,
        code: Some("Scripted".into()),
        message: format!("scripted {class:?}"),
    }
}

impl Prolificish {
    fn land(&self, id: &str) {
        let rows = self.set_ups.lock().unwrap()[id].clone();
        let mut b = self.bonuses.lock().unwrap();
        for r in rows {
            b.entry(r.submission)
                .or_default()
                .push(ExactMinor::from_whole(r.amount));
        }
    }

    fn queue(&self, id: &str, after: u32) {
        *self.pays.lock().unwrap().entry(id.to_owned()).or_default() += 1;
        if after == 0 {
            self.land(id);
        } else {
            self.queued.lock().unwrap().push((after, id.to_owned()));
        }
    }

    fn pays_of(&self, id: &str) -> u32 {
        self.pays.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    fn max_pays_of_any_id(&self) -> u32 {
        self.pays
            .lock()
            .unwrap()
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }

    fn paid_to(&self, s: &SubmissionId) -> Vec<ExactMinor> {
        self.bonuses
            .lock()
            .unwrap()
            .get(s)
            .cloned()
            .unwrap_or_default()
    }

    fn next_set_up_step(&self) -> SetUpStep {
        if let Some(s) = self.set_up_script.lock().unwrap().pop_front() {
            return s;
        }
        if let Some((rng, p)) = self.chaos.lock().unwrap().as_mut()
            && rng.f64() < *p
        {
            return [SetUpStep::LostAfter, SetUpStep::Throttled][rng.usize(..2)];
        }
        SetUpStep::Ok
    }

    fn next_pay_step(&self) -> PayStep {
        if let Some(s) = self.pay_script.lock().unwrap().pop_front() {
            return s;
        }
        if let Some((rng, p)) = self.chaos.lock().unwrap().as_mut()
            && rng.f64() < *p
        {
            return match rng.usize(..7) {
                0 => PayStep::ApplyThen(ErrorClass::Ambiguous),
                1 => PayStep::ApplyThen(ErrorClass::Throttled),
                2 => PayStep::Fail(ErrorClass::Ambiguous),
                3 => PayStep::Fail(ErrorClass::Throttled),
                4 => PayStep::Fail(ErrorClass::Refused),
                5 => PayStep::Late(rng.u32(1..4)),
                _ => PayStep::Hang,
            };
        }
        PayStep::Ok
    }

    fn enter_money_call(&self) {
        if self.money_calls_in_flight.fetch_add(1, Ordering::SeqCst) > 0 {
            self.overlapping_money_calls.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn leave_money_call(&self) {
        self.money_calls_in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ChunkedPlatform for Prolificish {
    async fn set_up(
        &self,
        _study: &StudyId,
        rows: &[ChunkRow],
    ) -> Result<SetUpAnswer, PlatformError> {
        self.enter_money_call();
        tokio::task::yield_now().await;
        let step = self.next_set_up_step();
        let r = (|| {
            if step == SetUpStep::Throttled {
                return Err(err(ErrorClass::Throttled));
            }
            let id = format!("bulk{}", self.next_id.fetch_add(1, Ordering::SeqCst));
            self.set_ups
                .lock()
                .unwrap()
                .insert(id.clone(), rows.to_vec());
            let sum: Cents = rows.iter().map(|r| r.amount).sum();
            let amount = if step == SetUpStep::WrongAmount {
                Cents(sum.0 + 1)
            } else {
                sum
            };
            let fees = ExactMinor::parse(&format!("{}.34", sum.0 / 3)).unwrap();
            let answer = SetUpAnswer {
                id: BulkBonusId::parse(&id).unwrap(),
                amount: ExactMinor::from_whole(amount),
                fees,
                vat: ExactMinor::ZERO,
                total: ExactMinor::from_whole(amount).checked_add(fees).unwrap(),
            };
            match step {
                SetUpStep::LostAfter => Err(err(ErrorClass::Ambiguous)),
                _ => Ok(answer),
            }
        })();
        self.leave_money_call();
        r
    }

    async fn pay(&self, id: &BulkBonusId) -> Result<(), PlatformError> {
        self.enter_money_call();
        tokio::task::yield_now().await;
        let step = self.next_pay_step();
        let id = id.as_str();
        let r = match step {
            PayStep::Ok => {
                self.queue(id, 0);
                Ok(())
            }
            PayStep::ApplyThen(c) => {
                self.queue(id, 0);
                Err(err(c))
            }
            PayStep::Fail(c) => Err(err(c)),
            PayStep::Late(n) => {
                self.queue(id, n);
                Ok(())
            }
            PayStep::Hang => {
                self.queue(id, 0);
                self.leave_money_call();
                self.hanging.store(true, Ordering::SeqCst);
                self.hung.notify_one();
                std::future::pending::<()>().await;
                unreachable!()
            }
        };
        self.leave_money_call();
        r
    }

    async fn submission_bonuses(&self, s: &SubmissionId) -> Result<Vec<ExactMinor>, PlatformError> {
        let landed: Vec<String> = {
            let mut q = self.queued.lock().unwrap();
            for (n, _) in q.iter_mut() {
                *n = n.saturating_sub(1);
            }
            let (now, later): (Vec<_>, Vec<_>) = q.drain(..).partition(|(n, _)| *n == 0);
            *q = later;
            now.into_iter().map(|(_, id)| id).collect()
        };
        for id in landed {
            self.land(&id);
        }
        Ok(self.paid_to(s))
    }
}

fn study() -> StudyId {
    StudyId::parse("60ffe5c8371090c7041d43f8").unwrap()
}

fn sub(i: usize) -> SubmissionId {
    SubmissionId::parse(&format!("{:024x}", 0xabc000 + i)).unwrap()
}

struct Bench {
    _dir: tempfile::TempDir,
    journal: Arc<JournalWriter>,
    batch: i64,
    p: Arc<Prolificish>,
    /// What each submission is asked to receive, in total (a multiset of amounts).
    asked: BTreeMap<SubmissionId, Vec<Cents>>,
}

fn bench(amounts: &[(usize, u64)]) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    let mut j = Journal::open(&path).unwrap();
    let rows: Vec<NewChunkRow> = amounts
        .iter()
        .enumerate()
        .map(|(i, (s, a))| NewChunkRow {
            line: i as u64 + 2,
            study: study(),
            submission: sub(*s),
            participant: None,
            amount: Cents(*a),
            reason: Some("thanks".into()),
        })
        .collect();
    let batch = j
        .record_chunked_batch(
            "bonuses-test",
            "prolific@test",
            "b.csv",
            Currency::Gbp,
            &rows,
        )
        .unwrap();
    let mut asked: BTreeMap<SubmissionId, Vec<Cents>> = BTreeMap::new();
    for (s, a) in amounts {
        asked.entry(sub(*s)).or_default().push(Cents(*a));
    }
    Bench {
        _dir: dir,
        journal: Arc::new(j.into_writer()),
        batch,
        p: Arc::new(Prolificish::default()),
        asked,
    }
}

fn cfg(chunk_size: usize, settle: Duration) -> ChunkConfig {
    ChunkConfig {
        chunk_size,
        settle,
        poll: Duration::from_millis(1),
        set_up_attempts: 50,
        read_concurrency: 4,
        engine: EngineConfig {
            backoff_base: Duration::from_millis(1),
            backoff_cap: Duration::from_millis(2),
            ..EngineConfig::default()
        },
        balance_before: None,
    }
}

impl Bench {
    fn run_with(&self, cfg: ChunkConfig, stop: Arc<StopSignal>) -> ChunkRun<Prolificish> {
        ChunkRun {
            platform: self.p.clone(),
            journal: self.journal.clone(),
            batch: self.batch,
            cfg,
            stop,
        }
    }

    async fn run(&self, cfg: ChunkConfig) -> ChunkRunEnd {
        execute_chunks(self.run_with(cfg, Arc::new(StopSignal::default())))
            .await
            .unwrap()
    }

    async fn counts(&self) -> BTreeMap<&'static str, u64> {
        let b = self.batch;
        self.journal
            .read(move |c| row_counts(c, b))
            .await
            .unwrap()
            .into_iter()
            .map(|(s, n)| (s.as_str(), n))
            .collect()
    }

    /// Every submission received exactly what it was asked, and no id was paid twice.
    fn assert_exactly_once(&self) {
        assert_eq!(self.p.max_pays_of_any_id(), 1, "an id was paid twice");
        for (s, asked) in &self.asked {
            let mut got: Vec<ExactMinor> = self.p.paid_to(s);
            let mut want: Vec<ExactMinor> =
                asked.iter().map(|a| ExactMinor::from_whole(*a)).collect();
            got.sort();
            want.sort();
            assert_eq!(got, want, "submission {s}");
        }
    }

    async fn journal_pays_per_chunk(&self) -> Vec<u64> {
        let b = self.batch;
        self.journal
            .read(move |c| {
                let mut v = Vec::new();
                for ch in chunks_of(c, b)? {
                    if let Some(id) = ch.bulk_id {
                        v.push(pays_of(c, &id)?);
                    }
                }
                Ok(v)
            })
            .await
            .unwrap()
    }
}

fn rows(n: usize) -> Vec<(usize, u64)> {
    (0..n).map(|i| (i, 100 + (i as u64 % 7) * 25)).collect()
}

#[tokio::test]
async fn a_clean_batch_is_set_up_paid_and_observed_in_chunks() {
    let b = bench(&rows(250));
    let end = b.run(cfg(100, Duration::from_secs(600))).await;
    assert_eq!(
        (end.paid, end.pending, end.awaiting, end.not_observed),
        (250, 0, 0, 0)
    );
    assert_eq!(b.p.set_ups.lock().unwrap().len(), 3);
    assert_eq!(b.journal_pays_per_chunk().await, vec![1, 1, 1]);
    assert_eq!(b.p.overlapping_money_calls.load(Ordering::SeqCst), 0);
    b.assert_exactly_once();
}

#[tokio::test]
async fn lost_set_up_answers_are_set_up_again_and_only_the_stored_id_is_paid() {
    let b = bench(&rows(30));
    b.p.set_up_script.lock().unwrap().extend([
        SetUpStep::LostAfter,
        SetUpStep::Throttled,
        SetUpStep::LostAfter,
    ]);
    let end = b.run(cfg(10, Duration::from_secs(600))).await;
    assert_eq!(end.paid, 30);
    // Two set-ups whose answers were lost exist on the platform and were never paid.
    let ids: Vec<String> = b.p.set_ups.lock().unwrap().keys().cloned().collect();
    assert_eq!(ids.len(), 5);
    let unpaid: Vec<&String> = ids.iter().filter(|id| b.p.pays_of(id) == 0).collect();
    assert_eq!(unpaid.len(), 2, "{unpaid:?}");
    b.assert_exactly_once();
}

#[tokio::test]
async fn a_pay_applied_without_an_answer_that_proves_anything_is_observed_never_resent() {
    for class in [
        ErrorClass::Ambiguous,
        ErrorClass::Throttled,
        ErrorClass::AlreadyDone,
    ] {
        let b = bench(&rows(20));
        b.p.pay_script
            .lock()
            .unwrap()
            .push_back(PayStep::ApplyThen(class));
        let end = b.run(cfg(10, Duration::from_secs(600))).await;
        assert_eq!(end.paid, 20, "{class:?}");
        for _ in 0..3 {
            b.run(cfg(10, Duration::from_secs(600))).await;
        }
        assert_eq!(b.journal_pays_per_chunk().await, vec![1, 1], "{class:?}");
        b.assert_exactly_once();
    }
}

#[tokio::test]
async fn a_pay_not_applied_but_not_proven_refused_is_not_observed_until_an_operator_says() {
    for class in [ErrorClass::Ambiguous, ErrorClass::Throttled] {
        let b = bench(&rows(20));
        b.p.pay_script
            .lock()
            .unwrap()
            .push_back(PayStep::Fail(class));
        let end = b.run(cfg(10, Duration::ZERO)).await;
        assert_eq!((end.paid, end.not_observed), (10, 10), "{class:?}");
        // Any number of later runs: never paid again, never set up again.
        for _ in 0..3 {
            let end = b.run(cfg(10, Duration::ZERO)).await;
            assert_eq!(end.not_observed, 10);
        }
        assert_eq!(b.p.set_ups.lock().unwrap().len(), 2);
        assert_eq!(b.journal_pays_per_chunk().await, vec![1, 1]);
        // The dashboard shows nothing: the operator says not paid; the same command pays.
        let changed = resolve_not_observed(&b.journal, b.batch, None, Resolution::NotPaid)
            .await
            .unwrap();
        assert_eq!(changed, 10);
        let end = b.run(cfg(10, Duration::ZERO)).await;
        assert_eq!((end.paid, end.not_observed, end.pending), (20, 0, 0));
        assert_eq!(b.journal_pays_per_chunk().await, vec![1, 1, 1]);
        b.assert_exactly_once();
    }
}

#[tokio::test]
async fn a_refused_pay_voids_its_id_and_its_rows_are_set_up_anew() {
    let b = bench(&rows(10));
    b.p.pay_script
        .lock()
        .unwrap()
        .push_back(PayStep::Fail(ErrorClass::Refused));
    let end = b.run(cfg(10, Duration::from_secs(600))).await;
    assert_eq!(end.paid, 10);
    assert_eq!(b.p.set_ups.lock().unwrap().len(), 2);
    // The refused id was sent once and never again; the new id once.
    assert_eq!(b.journal_pays_per_chunk().await, vec![1, 1]);
    b.assert_exactly_once();
}

#[tokio::test]
async fn a_kill_between_pay_sent_and_its_answer_is_observed_and_never_paid_again() {
    let b = bench(&rows(25));
    b.p.pay_script
        .lock()
        .unwrap()
        .extend([PayStep::Ok, PayStep::Hang]);
    let run = b.run_with(
        cfg(10, Duration::from_secs(600)),
        Arc::new(StopSignal::default()),
    );
    let task = tokio::spawn(execute_chunks(run));
    let hung = b.p.hung.notified();
    tokio::pin!(hung);
    hung.as_mut().enable();
    if !b.p.hanging.load(Ordering::SeqCst) {
        hung.await;
    }
    task.abort();
    let _ = task.await;
    let end = b.run(cfg(10, Duration::from_secs(600))).await;
    assert_eq!(end.paid, 25);
    assert_eq!(b.journal_pays_per_chunk().await, vec![1, 1, 1]);
    b.assert_exactly_once();
}

#[tokio::test]
async fn a_pay_that_lands_after_the_run_ended_is_observed_next_time_and_nothing_more_is_paid() {
    let b = bench(&rows(10));
    b.p.pay_script
        .lock()
        .unwrap()
        .push_back(PayStep::Late(1000));
    // The run waits at most the settle time (here none): the chunk is not observed.
    let end = b.run(cfg(10, Duration::ZERO)).await;
    assert_eq!((end.paid, end.not_observed), (0, 10));
    // Later it lands; the same command sees it first, and pays nothing more.
    {
        let mut q = b.p.queued.lock().unwrap();
        for (n, _) in q.iter_mut() {
            *n = 1;
        }
    }
    let end = b.run(cfg(10, Duration::ZERO)).await;
    assert_eq!((end.paid, end.not_observed), (10, 0));
    assert_eq!(b.p.set_ups.lock().unwrap().len(), 1);
    b.assert_exactly_once();
}

#[tokio::test]
async fn a_run_waits_for_a_late_landing_within_the_settle_time() {
    let b = bench(&rows(10));
    b.p.pay_script.lock().unwrap().push_back(PayStep::Late(30));
    let end = b.run(cfg(10, Duration::from_secs(600))).await;
    assert_eq!((end.paid, end.awaiting, end.not_observed), (10, 0, 0));
    b.assert_exactly_once();
}

#[tokio::test]
async fn a_set_up_whose_amount_is_not_the_chunks_sum_is_never_paid() {
    let b = bench(&rows(10));
    b.p.set_up_script
        .lock()
        .unwrap()
        .push_back(SetUpStep::WrongAmount);
    let end = b.run(cfg(10, Duration::from_secs(600))).await;
    assert!(
        matches!(end.stop, Some(StopReason::Journal(ref m)) if m.contains("adds up")),
        "{:?}",
        end.stop
    );
    assert_eq!(b.p.max_pays_of_any_id(), 0);
    assert_eq!(end.paid, 0);
    assert_eq!(b.counts().await.get("pending"), Some(&10));
}

#[tokio::test]
async fn two_bonuses_for_one_submission_are_two_payments_in_two_chunks() {
    // Submission 0 is asked 150 twice and already holds a 150 paid by hand.
    let b = bench(&[(0, 150), (1, 200), (0, 150)]);
    b.p.bonuses
        .lock()
        .unwrap()
        .insert(sub(0), vec![ExactMinor::from_whole(Cents(150))]);
    let end = b.run(cfg(10, Duration::from_secs(600))).await;
    assert_eq!(end.paid, 3);
    assert_eq!(b.p.set_ups.lock().unwrap().len(), 2);
    assert_eq!(b.p.paid_to(&sub(0)).len(), 3);
}

#[tokio::test]
async fn random_faults_and_kills_over_seeds_pay_every_row_exactly_once() {
    for seed in 0..12u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let amounts: Vec<(usize, u64)> = (0..120)
            .map(|_| (rng.usize(..90), 50 * rng.u64(1..5)))
            .collect();
        let b = bench(&amounts);
        *b.p.chaos.lock().unwrap() = Some((fastrand::Rng::with_seed(seed ^ 0x5eed), 0.25));
        let mut runs = 0;
        loop {
            runs += 1;
            assert!(runs < 200, "seed {seed}: no end");
            b.p.hanging.store(false, Ordering::SeqCst);
            let run = b.run_with(cfg(15, Duration::ZERO), Arc::new(StopSignal::default()));
            let mut task = tokio::spawn(execute_chunks(run));
            let hung = b.p.hung.notified();
            tokio::pin!(hung);
            hung.as_mut().enable();
            let end = tokio::select! {
                r = &mut task => Some(r.unwrap().unwrap()),
                _ = &mut hung => None,
            };
            // A hang is a kill: the run is dropped with the pay in flight.
            let Some(end) = end else {
                task.abort();
                let _ = task.await;
                continue;
            };
            if end.not_observed > 0 {
                // The operator checks the dashboard: each chunk resolved by what truly happened.
                let batch = b.batch;
                let chunks = b.journal.read(move |c| chunks_of(c, batch)).await.unwrap();
                for ch in chunks.iter().filter(|c| c.state == ChunkState::NotObserved) {
                    let id = ch.bulk_id.as_ref().unwrap().as_str();
                    let paid = b.p.pays_of(id) > 0;
                    // Land whatever is queued first, as time would.
                    b.p.queued
                        .lock()
                        .unwrap()
                        .iter_mut()
                        .for_each(|(n, _)| *n = 1);
                    let _ = b.p.submission_bonuses(&sub(0)).await;
                    if !paid {
                        resolve_not_observed(
                            &b.journal,
                            b.batch,
                            Some(ch.chunk),
                            Resolution::NotPaid,
                        )
                        .await
                        .unwrap();
                    }
                }
                continue;
            }
            if end.pending == 0 && end.awaiting == 0 && end.stop.is_none() {
                break;
            }
        }
        b.assert_exactly_once();
        let counts = b.counts().await;
        assert_eq!(counts.get("paid"), Some(&120), "seed {seed}: {counts:?}");
        assert!(!counts.contains_key(&RowState::Failed.as_str()));
    }
}
