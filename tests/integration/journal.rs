//! The write protocol seen from the outside: at the moment of every call, the journal on disk
//! already holds the intent (`in_flight`), and after the run it holds every outcome. And a
//! journal written by payout 0.1 migrates and its unfinished batch resumes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payout::emulator::{BackgroundEmulator, EmulatorConfig, RunningEmulator};
use payout::engine::{EngineConfig, QualMap, Run, Silent, StopSignal, execute};
use payout::ids::{AssignmentId, QualificationTypeId, WorkerId};
use payout::input::{InputOptions, Row as OpRow, parse_bytes};
use payout::journal::{BatchKind, ItemState, Journal};
use payout::pace::{PaceConfig, Pacer};
use payout::plan::PlanConfig;
use payout::platform::{
    AssignmentInfo, Balance, Call, CredentialSource, MturkPlatform, PaidBonus, Platform,
    PlatformError, QualScore, Timeouts,
};
use payout::target::Target;

use crate::support::*;

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
    async fn apply(&self, call: Call<'_>) -> Result<(), PlatformError> {
        let batch = self.batch;
        let on_disk = Journal::open_read_only(&self.journal)
            .and_then(|j| j.items(batch))
            .expect("the journal is readable while payout writes it");
        match on_disk.iter().find(|i| i.token.as_deref() == call.token) {
            Some(i) if i.state == ItemState::InFlight && i.attempts >= 1 => {}
            Some(i) => self.violations.lock().unwrap().push(format!(
                "{} sent while the journal says {:?} after {} attempts",
                i.origin, i.state, i.attempts
            )),
            None => self.violations.lock().unwrap().push(format!(
                "token {:?} sent but not in the journal",
                call.token
            )),
        }
        *self.calls.lock().unwrap() += 1;
        self.inner.apply(call).await
    }

    async fn bonuses_for_assignment(
        &self,
        assignment: &AssignmentId,
    ) -> Result<Vec<PaidBonus>, PlatformError> {
        self.inner.bonuses_for_assignment(assignment).await
    }

    async fn qualification_score(
        &self,
        worker: &WorkerId,
        qualification: &QualificationTypeId,
    ) -> Result<QualScore, PlatformError> {
        self.inner.qualification_score(worker, qualification).await
    }

    async fn blocked_workers(&self) -> Result<Vec<String>, PlatformError> {
        self.inner.blocked_workers().await
    }

    async fn balance(&self) -> Result<Balance, PlatformError> {
        self.inner.balance().await
    }

    async fn find_qualification_type(
        &self,
        name: &str,
    ) -> Result<Option<QualificationTypeId>, PlatformError> {
        self.inner.find_qualification_type(name).await
    }

    async fn create_qualification_type(
        &self,
        name: &str,
        description: &str,
    ) -> Result<QualificationTypeId, PlatformError> {
        self.inner
            .create_qualification_type(name, description)
            .await
    }

    async fn assignment(
        &self,
        assignment: &AssignmentId,
    ) -> Result<Option<AssignmentInfo>, PlatformError> {
        self.inner.assignment(assignment).await
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
        let rows: Vec<OpRow> = parse_bytes(
            csv_text(&rows(60)).as_bytes(),
            "t.csv",
            &InputOptions::default(),
        )
        .unwrap();
        let config = PlanConfig {
            kind: BatchKind::Bonus,
            target: Target::Emulator,
            endpoint: None,
            allow_repeat: false,
            allow_overlap: false,
            allow_duplicates: false,
        };
        let mut journal = Journal::open(&path).unwrap();
        let (batch, _) =
            payout::plan::plan_and_record(&mut journal, rows, config, "t.csv").unwrap();
        let platform = Arc::new(Inspecting {
            inner: MturkPlatform::connect(
                &emu.url(),
                CredentialSource::Fixed {
                    access_key_id: "AKIDTEST".into(),
                    secret_access_key: "secret".into(),
                },
                Timeouts {
                    connect: Duration::from_secs(5),
                    call: Duration::from_secs(5),
                },
            )
            .await
            .unwrap(),
            journal: path.clone(),
            batch: batch.id,
            violations: Mutex::new(Vec::new()),
            calls: Mutex::new(0),
        });
        let writer = Arc::new(journal.into_writer());
        let cfg = EngineConfig {
            concurrency: 8,
            pace: PaceConfig::pinned(10_000.0),
            max_attempts: 20,
            backoff_base: Duration::from_millis(1),
            ..EngineConfig::default()
        };
        execute(Run {
            platform: platform.clone(),
            journal: writer.clone(),
            batch: batch.clone(),
            quals: QualMap::default(),
            cfg,
            pacer: Pacer::new(PaceConfig::pinned(10_000.0)),
            reporter: Arc::new(Silent),
            stop: Arc::new(StopSignal::default()),
        })
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
            items.iter().all(|i| i.state == ItemState::Done),
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

/// The fixture was recorded by payout 0.1 against an emulator at this address (see
/// tests/fixtures/README.md); a loopback address of its own keeps clear of other tests.
const FIXTURE_EMULATOR: &str = "127.0.0.77:47123";

#[test]
fn a_version_1_journal_migrates_and_its_unfinished_batch_resumes_to_the_same_result() {
    let s = Scratch::new();
    let fixtures = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(format!("{fixtures}/journal-v1.sqlite"), s.journal()).unwrap();
    let csv = std::fs::read_to_string(format!("{fixtures}/v1-batch.csv")).unwrap();
    let all: Vec<OpRow> = parse_bytes(csv.as_bytes(), "v1", &InputOptions::default()).unwrap();

    // The old version wrote the journal; this one reads and migrates it.
    let status = s.run(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["rows"], 40);
    assert_eq!(v["paid"], 24);
    assert_eq!(v["pending"], 16);
    assert_eq!(
        v["unknown"], 4,
        "payout 0.1's in-flight calls are unknown now"
    );
    let paid_before: Vec<String> = {
        let j = Journal::open_read_only(&s.journal()).unwrap();
        let b = j.latest_batch(false).unwrap().unwrap();
        assert_eq!(b.kind, BatchKind::Bonus);
        j.items(b.id)
            .unwrap()
            .into_iter()
            .filter(|i| i.state == ItemState::Done)
            .map(|i| i.token.unwrap())
            .collect()
    };
    // A payout 0.1 binary refuses the migrated journal: its user_version is newer.
    let version: i64 = rusqlite::Connection::open(s.journal())
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 6);

    let addr: std::net::SocketAddr = FIXTURE_EMULATOR.parse().unwrap();
    let emu = BackgroundEmulator::start_at(EmulatorConfig::default(), addr)
        .expect("bind the fixture's address");
    let resumed = s.run(&["resume", "--backoff-ms", "2"]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    // The new emulator never saw the 24 paid before; it paid exactly the 16 others, once.
    let expected: Vec<Row> = rows_of(&all)
        .into_iter()
        .zip(&all)
        .filter(|(_, r)| {
            let t = r.op.request_token("emulator", 0).unwrap();
            !paid_before.contains(&t)
        })
        .map(|(row, _)| row)
        .collect();
    assert_eq!(expected.len(), 16);
    assert_paid_exactly_once(&emu.handle(), &expected);
    let status = s.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["paid"], 40);
    assert_eq!(v["pending"], 0);
}

/// The fixture's rows in the support module's shape.
fn rows_of(rows: &[OpRow]) -> Vec<Row> {
    rows.iter()
        .map(|r| match &r.op {
            payout::op::Operation::Bonus {
                worker,
                assignment,
                amount,
                reason,
            } => Row {
                worker: worker.to_string(),
                assignment: assignment.to_string(),
                cents: amount.0,
                reason: reason.clone(),
            },
            other => panic!("not a bonus: {other:?}"),
        })
        .collect()
}

/// The version-2 fixture was recorded by the payout that landed before schema 3, against an
/// emulator at this address (see tests/fixtures/README.md).
const FIXTURE_V2_EMULATOR: &str = "127.0.0.78:47124";

#[test]
fn a_version_2_journal_migrates_and_its_unfinished_batch_resumes() {
    let s = Scratch::new();
    let fixtures = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(format!("{fixtures}/journal-v2.sqlite"), s.journal()).unwrap();
    let csv = std::fs::read_to_string(format!("{fixtures}/v2-pending.csv")).unwrap();
    let pending: Vec<OpRow> = parse_bytes(csv.as_bytes(), "v2", &InputOptions::default()).unwrap();

    let status = s.run(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["batch"], "v2-pending-504de6");
    assert_eq!(v["pending"], 3);
    let version: i64 = rusqlite::Connection::open(s.journal())
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 6);

    let addr: std::net::SocketAddr = FIXTURE_V2_EMULATOR.parse().unwrap();
    let emu = BackgroundEmulator::start_at(EmulatorConfig::default(), addr)
        .expect("bind the fixture's address");
    let resumed = s.run(&["resume", "--backoff-ms", "2"]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_paid_exactly_once(&emu.handle(), &rows_of(&pending));
    let status = s.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["paid"], 3);
    assert_eq!(v["pending"], 0);
    // The same command as then recognises the batch (its fingerprint is computed as it was).
    let url = format!("http://{FIXTURE_V2_EMULATOR}");
    let file = format!("{fixtures}/v2-pending.csv");
    let again = s.run(&["run", &file, "--emulator", "--endpoint-url", &url]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(
        again.stderr.contains("Continuing batch v2-pending-504de6"),
        "{again:?}"
    );
    assert_paid_exactly_once(&emu.handle(), &rows_of(&pending));
}

/// The version-3 fixture was recorded by the payout that landed with schema 3 (commit 20946e6)
/// against an emulator at this address, killed mid-batch (see tests/fixtures/README.md).
const FIXTURE_V3_EMULATOR: &str = "127.0.0.79:47125";

#[test]
fn a_version_3_journal_killed_mid_batch_migrates_and_resumes_to_the_same_result() {
    let s = Scratch::new();
    let fixtures = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(format!("{fixtures}/journal-v3.sqlite"), s.journal()).unwrap();
    let csv = std::fs::read_to_string(format!("{fixtures}/v3-batch.csv")).unwrap();
    let all: Vec<OpRow> = parse_bytes(csv.as_bytes(), "v3", &InputOptions::default()).unwrap();

    let status = s.run(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["batch"], "v3-batch-7744d3");
    assert_eq!(v["rows"], 30);
    assert_eq!(v["paid"], 8);
    assert_eq!(
        v["unknown"], 1,
        "the call in flight at the kill is unknown now"
    );
    assert_eq!(
        v["pending"], 22,
        "21 never sent and the unknown one are open"
    );
    let version: i64 = rusqlite::Connection::open(s.journal())
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 6);
    let batch_platform: String = rusqlite::Connection::open(s.journal())
        .unwrap()
        .query_row("SELECT platform || ' ' || currency FROM batches", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        batch_platform, "mturk USD",
        "every earlier batch is MTurk's, in dollars"
    );
    let done_before: Vec<String> = {
        let j = Journal::open_read_only(&s.journal()).unwrap();
        let b = j.latest_batch(false).unwrap().unwrap();
        j.items(b.id)
            .unwrap()
            .into_iter()
            .filter(|i| i.state == ItemState::Done)
            .map(|i| i.op.worker().to_string())
            .collect()
    };
    assert_eq!(done_before.len(), 8);

    // A fresh emulator at the fixture's address knows nothing of the 8 paid then: whatever it
    // pays now is what the resume sent, and it must be exactly the 22 rows not done.
    let addr: std::net::SocketAddr = FIXTURE_V3_EMULATOR.parse().unwrap();
    let emu = BackgroundEmulator::start_at(EmulatorConfig::default(), addr)
        .expect("bind the fixture's address");
    let resumed = s.run(&["resume", "--backoff-ms", "2"]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    let rest: Vec<OpRow> = all
        .iter()
        .filter(|r| !done_before.contains(&r.op.worker().to_string()))
        .cloned()
        .collect();
    assert_eq!(rest.len(), 22);
    assert_paid_exactly_once(&emu.handle(), &rows_of(&rest));
    let status = s.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        (v["paid"].as_u64(), v["pending"].as_u64()),
        (Some(30), Some(0))
    );
    // The same command as then recognises the batch and sends nothing more.
    let url = format!("http://{FIXTURE_V3_EMULATOR}");
    let file = format!("{fixtures}/v3-batch.csv");
    let again = s.run(&["run", &file, "--emulator", "--endpoint-url", &url]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("v3-batch-7744d3"), "{again:?}");
    assert_paid_exactly_once(&emu.handle(), &rows_of(&rest));
}
