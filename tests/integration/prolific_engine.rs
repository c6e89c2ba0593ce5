//! The chunked engine through payout's real Prolific client (reqwest over loopback) against the
//! Prolific emulator: set-ups and pays under every fault the emulator has, kills at random
//! points, the same run again until done, not-observed chunks resolved as the dashboard would
//! say — and no participant paid twice, no bulk id paid twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use payout::emulator::prolific::{FaultRates, ProlificConfig, ProlificSeed, RunningProlific};
use payout::engine::{
    ChunkConfig, ChunkRun, ChunkState, EngineConfig, Resolution, StopSignal, execute_chunks,
    resolve_not_observed,
};
use payout::ids::{StudyId, SubmissionId};
use payout::journal::Journal;
use payout::journal::chunks::{NewChunkRow, chunks_of};
use payout::money::{Cents, Currency};
use payout::platform::prolific::{HttpTimeouts, ProlificPlatform, Token};

const TOKEN: &str = "payout-prolific-emulator-token";

fn engine_cfg(settle: Duration) -> ChunkConfig {
    ChunkConfig {
        chunk_size: 100,
        settle,
        poll: Duration::from_millis(5),
        set_up_attempts: 40,
        read_concurrency: 8,
        engine: EngineConfig {
            backoff_base: Duration::from_millis(2),
            backoff_cap: Duration::from_millis(20),
            read_attempts: 40,
            ..EngineConfig::default()
        },
        balance_before: None,
    }
}

struct World {
    emu: RunningProlific,
    study: String,
    /// What each participant is asked to be paid (minor units).
    asked: BTreeMap<String, Vec<i64>>,
    journal: Arc<payout::journal::JournalWriter>,
    batch: i64,
    _dir: tempfile::TempDir,
}

async fn world(seed: u64, rows: usize, config: ProlificConfig) -> World {
    let mut s = ProlificSeed::new();
    let ws = s.workspace("Lab", "GBP", 100_000_000);
    let study = s.study(&ws, "Follow-up");
    let people = s.generate(&study, rows);
    let emu = RunningProlific::start_loopback(s.build(), config)
        .await
        .expect("start the Prolific emulator");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut asked: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut new_rows = Vec::new();
    for (i, (participant, submission)) in people.iter().enumerate() {
        let amount = 25 * rng.i64(1..12);
        asked.entry(participant.clone()).or_default().push(amount);
        new_rows.push(NewChunkRow {
            line: i as u64 + 2,
            study: StudyId::parse(&study).unwrap(),
            submission: SubmissionId::parse(submission).unwrap(),
            participant: None,
            amount: Cents(amount as u64),
            reason: None,
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(&dir.path().join("journal.sqlite")).unwrap();
    let batch = j
        .record_chunked_batch(
            "prolific-test",
            "prolific@emulator",
            "b.csv",
            Currency::Gbp,
            &new_rows,
        )
        .unwrap();
    World {
        emu,
        study,
        asked,
        journal: Arc::new(j.into_writer()),
        batch,
        _dir: dir,
    }
}

impl World {
    fn platform(&self) -> Arc<ProlificPlatform> {
        Arc::new(
            ProlificPlatform::new(
                &self.emu.url(),
                Token::new(TOKEN).unwrap(),
                HttpTimeouts {
                    connect: Duration::from_secs(2),
                    call: Duration::from_secs(5),
                },
            )
            .unwrap(),
        )
    }

    /// The operator reads the dashboard: a not-observed chunk whose id was paid (its payment
    /// perhaps still on its way) is left to be observed; one never paid is resolved not paid.
    async fn resolve_by_the_truth(&self) {
        let batch = self.batch;
        let chunks = self
            .journal
            .read(move |c| chunks_of(c, batch))
            .await
            .unwrap();
        let pays = self.emu.handle().bulk_pays();
        for ch in chunks.iter().filter(|c| c.state == ChunkState::NotObserved) {
            let id = ch.bulk_id.as_ref().unwrap().as_str();
            if pays.get(id).copied().unwrap_or(0) == 0 {
                resolve_not_observed(&self.journal, batch, Some(ch.chunk), Resolution::NotPaid)
                    .await
                    .unwrap();
            } else {
                // Paid: time passes until Prolific shows it.
                self.emu.handle().advance_clock(Duration::from_secs(3600));
            }
        }
    }

    fn assert_exactly_once(&self, seed: u64) {
        let h = self.emu.handle();
        assert!(
            h.double_payments().is_empty(),
            "seed {seed}: {:?}",
            h.double_payments()
        );
        assert!(h.bulk_pays().values().all(|n| *n <= 1), "seed {seed}");
        let mut got = h.paid_by_participant(&self.study);
        got.retain(|_, v| !v.is_empty());
        for v in got.values_mut() {
            v.sort();
        }
        let mut want = self.asked.clone();
        for v in want.values_mut() {
            v.sort();
        }
        assert_eq!(
            got, want,
            "seed {seed}: every participant paid exactly what was asked"
        );
    }
}

/// Runs the batch, killing it at a random point; `None` when it was killed.
async fn run_once(
    w: &World,
    settle: Duration,
    kill_after: Option<Duration>,
) -> Option<payout::engine::ChunkRunEnd> {
    let run = ChunkRun {
        platform: w.platform(),
        journal: w.journal.clone(),
        batch: w.batch,
        cfg: engine_cfg(settle),
        stop: Arc::new(StopSignal::default()),
    };
    let mut task = tokio::spawn(execute_chunks(run));
    match kill_after {
        None => Some(task.await.unwrap().unwrap()),
        Some(d) => match tokio::time::timeout(d, &mut task).await {
            Ok(r) => Some(r.unwrap().unwrap()),
            Err(_) => {
                task.abort();
                let _ = task.await;
                None
            }
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_rows_under_faults_kills_and_late_pays_are_each_paid_exactly_once() {
    tokio::time::timeout(Duration::from_secs(240), async {
        let seeds: u64 = std::env::var("PAYOUT_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        for seed in 0..seeds {
            let config = ProlificConfig {
                seed,
                setup_faults: FaultRates::uniform(0.05, 0.05, 0.05),
                pay_faults: FaultRates::uniform(0.1, 0.1, 0.1),
                read_faults: FaultRates::uniform(0.01, 0.01, 0.01),
                contention_window: Some(Duration::from_millis(2)),
                late_pay_rate: 0.2,
                late_pay_delay: Duration::from_secs(600),
                unpayable_rate: 0.05,
                page_size: 50,
                ..ProlificConfig::default()
            };
            let w = world(seed, 1000, config).await;
            let mut rng = fastrand::Rng::with_seed(seed ^ 0xdead);
            let mut runs = 0;
            loop {
                runs += 1;
                assert!(runs < 100, "seed {seed}: no end after {runs} runs");
                // Two kills at random points early on, then runs that end by themselves.
                let kill = (runs <= 2).then(|| Duration::from_millis(rng.u64(20..400)));
                let Some(end) = run_once(&w, Duration::ZERO, kill).await else {
                    continue;
                };
                if end.not_observed > 0 {
                    w.resolve_by_the_truth().await;
                    continue;
                }
                if end.pending == 0 && end.awaiting == 0 && end.stop.is_none() {
                    assert_eq!(end.paid, 1000, "seed {seed}");
                    break;
                }
            }
            w.assert_exactly_once(seed);
            w.emu.shutdown().await;
        }
    })
    .await
    .expect("bounded in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pay_that_lands_after_the_run_is_observed_by_the_next_and_nothing_more_is_paid() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let config = ProlificConfig {
            late_pay_rate: 1.0,
            late_pay_delay: Duration::from_secs(600),
            ..ProlificConfig::default()
        };
        let w = world(1, 30, config).await;
        let end = run_once(&w, Duration::ZERO, None).await.unwrap();
        assert_eq!((end.paid, end.not_observed), (0, 30));
        assert_eq!(w.emu.handle().pending_pays(), 1);
        w.emu.handle().advance_clock(Duration::from_secs(601));
        let end = run_once(&w, Duration::ZERO, None).await.unwrap();
        assert_eq!((end.paid, end.not_observed), (30, 0));
        assert_eq!(w.emu.handle().stats().setups, 1, "nothing set up again");
        w.assert_exactly_once(1);
        w.emu.shutdown().await;
    })
    .await
    .expect("bounded in time");
}
