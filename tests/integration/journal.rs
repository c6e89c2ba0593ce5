//! The write protocol seen from the outside: at the moment of every call, the journal on disk
//! already holds the intent (`in_flight`), and after the run it holds every outcome.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payout::emulator::{EmulatorConfig, RunningEmulator};
use payout::ids::AssignmentId;
use payout::input::{BonusRow, InputOptions, parse_bonuses};
use payout::journal::{ItemState, Journal};
use payout::plan::{Target, plan};
use payout::platform::{
    Balance, BonusRequest, CredentialSource, MturkPlatform, PaidBonus, Platform, PlatformError,
};
use payout::runner::{RunnerConfig, Silent, StopSignal, run_batch};

use crate::support::{csv_text, rows};

/// Delegates to the real adapter, but first reads the journal file through a separate
/// read-only connection, as a crash at that instant would leave it.
struct Inspecting {
    inner: MturkPlatform,
    journal: PathBuf,
    batch: i64,
    violations: Mutex<Vec<String>>,
    calls: Mutex<u64>,
}

impl Platform for Inspecting {
    async fn send_bonus(&self, req: &BonusRequest) -> Result<(), PlatformError> {
        let batch = self.batch;
        let on_disk = Journal::open_read_only(&self.journal)
            .and_then(|j| j.items(batch))
            .expect("the journal is readable while payout writes it");
        match on_disk.iter().find(|i| i.token == req.token) {
            Some(i) if i.state == ItemState::InFlight && i.attempts >= 1 => {}
            Some(i) => self.violations.lock().unwrap().push(format!(
                "line {} sent while the journal says {:?} after {} attempts",
                i.line, i.state, i.attempts
            )),
            None => self
                .violations
                .lock()
                .unwrap()
                .push(format!("token {} sent but not in the journal", req.token)),
        }
        *self.calls.lock().unwrap() += 1;
        self.inner.send_bonus(req).await
    }

    async fn bonuses_for_assignment(
        &self,
        assignment: &AssignmentId,
    ) -> Result<Vec<PaidBonus>, PlatformError> {
        self.inner.bonuses_for_assignment(assignment).await
    }

    async fn balance(&self) -> Result<Balance, PlatformError> {
        self.inner.balance().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_preceded_by_a_durable_intent_and_followed_by_its_outcome() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.sqlite");
        let emu = RunningEmulator::start(
            EmulatorConfig {
                lost_rate: 0.1,
                fault_rate: 0.1,
                seed: 5,
                ..EmulatorConfig::default()
            },
            ([127, 0, 0, 1], 0).into(),
        )
        .await
        .unwrap();
        let rows: Vec<BonusRow> = parse_bonuses(
            csv_text(&rows(60)).as_bytes(),
            "t.csv",
            &InputOptions::default(),
        )
        .unwrap();
        let mut journal = Journal::open(&path).unwrap();
        let batch = journal
            .create_batch(&plan(&rows, Target::Emulator, ""), "t.csv", None, false)
            .unwrap();
        let items = journal.items(batch.id).unwrap();
        let platform = Arc::new(Inspecting {
            inner: MturkPlatform::connect(
                &emu.url(),
                CredentialSource::Fixed {
                    access_key_id: "AKIDTEST".into(),
                    secret_access_key: "secret".into(),
                },
                Duration::from_secs(5),
            )
            .await
            .unwrap(),
            journal: path.clone(),
            batch: batch.id,
            violations: Mutex::new(Vec::new()),
            calls: Mutex::new(0),
        });
        let writer = Arc::new(journal.into_writer());
        run_batch(
            platform.clone(),
            writer.clone(),
            batch.id,
            items,
            RunnerConfig {
                concurrency: 8,
                start_rate: 10_000.0,
                max_rate: 10_000.0,
                max_attempts: 20,
                backoff_base: Duration::from_millis(1),
                ..RunnerConfig::default()
            },
            Arc::new(Silent),
            Arc::new(StopSignal::default()),
        )
        .await
        .unwrap();
        let journal = Arc::try_unwrap(writer).ok().unwrap().finish();

        assert!(
            platform.violations.lock().unwrap().is_empty(),
            "{:#?}",
            platform.violations.lock().unwrap()
        );
        let calls = *platform.calls.lock().unwrap();
        assert!(calls > 60, "faults forced retries ({calls} calls)");
        let items = journal.items(batch.id).unwrap();
        assert!(
            items.iter().all(|i| i.state == ItemState::Paid),
            "{items:#?}"
        );
        let attempts: u32 = items.iter().map(|i| i.attempts).sum();
        assert_eq!(
            u64::from(attempts),
            calls,
            "every call is an attempt in the journal"
        );
        assert_eq!(emu.handle().ledger().len(), 60);
        assert!(emu.handle().double_payments().is_empty());
        emu.shutdown().await;
    })
    .await
    .expect("bounded in time");
}
