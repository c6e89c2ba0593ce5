//! Shared test helpers: the real `payout` binary in a sandboxed environment, CSV fixtures, ledgers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use payout::emulator::{BackgroundEmulator, EmulatorConfig, EmulatorHandle};

pub const ACCESS_KEY: &str = "AKIDPAYOUTTEST";
/// Distinctive so that a leak anywhere is found by a plain search.
pub const SECRET: &str = "sEcReT-payout-test-never-print-8f3a";

/// A scratch directory with a journal path and a fake HOME (no real ~/.aws is ever read).
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn journal(&self) -> PathBuf {
        self.path("journal.sqlite")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write fixture");
        p
    }

    /// `payout ARGS` with test credentials, a private HOME and this scratch's journal.
    pub fn payout(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_payout"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PAYOUT_JOURNAL", self.journal())
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Outcome {
        Outcome::from(self.payout(args).output().expect("run payout"))
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        self.payout(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn payout")
    }
}

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Outcome {
    fn from(o: Output) -> Outcome {
        Outcome {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// One bonus row of a fixture.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    pub worker: String,
    pub assignment: String,
    pub cents: u64,
    pub reason: String,
}

/// `n` distinct, valid rows with amounts from 1 cent to a few dollars.
pub fn rows(n: usize) -> Vec<Row> {
    (0..n)
        .map(|i| Row {
            worker: format!("A{:012}", 7919 * i % 1_000_003),
            assignment: format!("3ASSIGN{:023}", i),
            cents: 1 + (i as u64 * 37) % 500,
            reason: format!("Bonus for round {}, thanks!", i % 5),
        })
        .collect()
}

pub fn csv_text(rows: &[Row]) -> String {
    let mut s = String::from("WorkerId,AssignmentId,BonusAmount,Reason\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{}.{:02},\"{}\"\n",
            r.worker,
            r.assignment,
            r.cents / 100,
            r.cents % 100,
            r.reason
        ));
    }
    s
}

/// The emulator's ledger as a multiset of rows.
pub fn ledger_counts(h: &EmulatorHandle) -> BTreeMap<Row, usize> {
    let mut m = BTreeMap::new();
    for p in h.ledger() {
        *m.entry(Row {
            worker: p.worker_id.clone(),
            assignment: p.assignment_id.clone(),
            cents: p.amount.0,
            reason: p.reason.clone(),
        })
        .or_insert(0) += 1;
    }
    m
}

/// Asserts that the emulator paid every row of `expected` exactly once and nothing else.
pub fn assert_paid_exactly_once(h: &EmulatorHandle, expected: &[Row]) {
    let ledger = ledger_counts(h);
    let mut want = BTreeMap::new();
    for r in expected {
        *want.entry(r.clone()).or_insert(0) += 1;
    }
    let extra: Vec<_> = ledger
        .iter()
        .filter(|(r, n)| want.get(*r) != Some(*n))
        .collect();
    let missing: Vec<_> = want
        .iter()
        .filter(|(r, n)| ledger.get(*r) != Some(*n))
        .collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "ledger differs from the rows: {} wrong in the ledger (first: {:?}), {} missing or miscounted (first: {:?})",
        extra.len(),
        extra.first(),
        missing.len(),
        missing.first()
    );
    assert!(
        h.double_payments().is_empty(),
        "double payments: {:?}",
        h.double_payments()
    );
}

pub fn emulator(config: EmulatorConfig) -> BackgroundEmulator {
    BackgroundEmulator::start(config).expect("start the emulator")
}

/// Emulator settings that check signatures against the test credentials.
pub fn signed_config() -> EmulatorConfig {
    EmulatorConfig {
        credentials: Some((ACCESS_KEY.into(), SECRET.into())),
        ..EmulatorConfig::default()
    }
}

/// Flags that point a run at `emu` through the sandbox code path, fast enough for tests.
pub fn target_args(emu: &BackgroundEmulator) -> Vec<String> {
    vec![
        "--sandbox".into(),
        "--endpoint-url".into(),
        emu.url(),
        "--testing-endpoint".into(),
        "--backoff-ms".into(),
        "2".into(),
        "--call-timeout-ms".into(),
        "5000".into(),
    ]
}

pub fn args<'a>(head: &[&'a str], tail: &'a [String]) -> Vec<&'a str> {
    head.iter()
        .copied()
        .chain(tail.iter().map(String::as_str))
        .collect()
}

/// Every file the journal consists of, as bytes (db, WAL, shared memory).
pub fn journal_bytes(journal: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut p = journal.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(b) = std::fs::read(PathBuf::from(p)) {
            all.extend(b);
        }
    }
    all
}

/// The `--json` output schema, as committed.
pub fn output_schema() -> serde_json::Value {
    let text = std::fs::read_to_string(format!(
        "{}/schemas/output.schema.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("the schema file");
    serde_json::from_str(&text).expect("the schema is JSON")
}

/// Parses `stdout` as one JSON object and checks it against `schemas/output.schema.json`
/// (the subset of JSON Schema it uses: type, required, properties, additionalProperties,
/// items, enum, $ref to #/definitions).
pub fn json_output(out: &Outcome) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {out:?}"));
    let schema = output_schema();
    let mut errors = Vec::new();
    check_schema(&schema, &schema, &v, "$", &mut errors);
    assert!(errors.is_empty(), "{errors:#?}\n{out:?}");
    assert_eq!(
        v["exit_code"].as_i64(),
        Some(i64::from(out.code)),
        "exit_code is the exit status: {out:?}"
    );
    v
}

fn check_schema(
    root: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
    errors: &mut Vec<String>,
) {
    use serde_json::Value;
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/definitions/");
        return check_schema(root, &root["definitions"][name], v, at, errors);
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let actual = match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let ok = types
            .iter()
            .any(|t| *t == actual || (*t == "number" && actual == "integer"));
        if !ok {
            errors.push(format!("{at}: {actual} is not {types:?}"));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(v)
    {
        errors.push(format!("{at}: {v} is not one of {allowed:?}"));
    }
    if let Value::Object(fields) = v {
        if let Some(Value::Array(req)) = schema.get("required") {
            for r in req.iter().filter_map(Value::as_str) {
                if !fields.contains_key(r) {
                    errors.push(format!("{at}: missing {r}"));
                }
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, fv) in fields {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check_schema(root, s, fv, &format!("{at}.{k}"), errors),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false))
                    || (props.is_some() && at == "$") =>
                {
                    errors.push(format!("{at}: unexpected field {k}"))
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (v, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check_schema(root, s, item, &format!("{at}[{i}]"), errors);
        }
    }
}

/// A generator for kill points drawn at random, reproducible with `PAYOUT_CRASH_SEED` (the
/// seed is printed).
pub fn crash_rng() -> fastrand::Rng {
    let seed = std::env::var("PAYOUT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("kill points from PAYOUT_CRASH_SEED={seed}");
    fastrand::Rng::with_seed(seed)
}

/// When to kill: after the emulator has applied so many payments, or received so many requests
/// (the latter lands kills while calls are under way, between intent and outcome).
#[derive(Debug, Clone, Copy)]
pub enum KillAt {
    Payments(u64),
    Requests(u64),
}

/// Runs `cmd` and SIGKILLs it at `at` (unless it finished first).
pub fn run_and_kill_at(s: &Scratch, emu: &BackgroundEmulator, cmd: &[&str], at: KillAt) {
    let mut child = s.spawn(cmd);
    let h = emu.handle();
    let start = h.stats();
    let reached = h.wait_for(Duration::from_secs(60), |st| match at {
        KillAt::Payments(n) => st.payments >= n,
        KillAt::Requests(n) => st.total_requests >= start.total_requests + n,
    });
    child.kill().expect("SIGKILL payout");
    let status = child.wait().expect("reap payout");
    assert!(
        reached || status.success(),
        "payout neither reached {at:?} nor finished: {status:?}"
    );
}

/// A signed emulator and a batch of `n` rows (`b.csv`) paid into it by a run that ended 0: where
/// tests of what comes after a run start.
pub fn paid_batch(s: &Scratch, n: usize) -> (BackgroundEmulator, PathBuf) {
    let emu = emulator(signed_config());
    let file = s.write("b.csv", &csv_text(&rows(n)));
    let out = s.run(&args(&["run", file.to_str().unwrap()], &target_args(&emu)));
    assert_eq!(out.code, 0, "{out:?}");
    (emu, file)
}

/// Starts `cmd` (its output discarded) and kill -9s it as soon as `now()` holds, `within` has
/// passed, or it has ended by itself: a crash at a chosen point, bounded in time.
pub fn kill_9_when(mut cmd: Command, within: std::time::Duration, mut now: impl FnMut() -> bool) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn payout");
    let deadline = std::time::Instant::now() + within;
    while child.try_wait().unwrap().is_none() && !now() && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    let _ = child.kill();
    let _ = child.wait();
}
