//! The real binary end to end against the emulator on 127.0.0.1: payout's own ceiling with the
//! durable journal next to a plain sequential SendBonus loop, and the adaptive pace through the
//! whole engine (journal, verification, writer thread) under MTurk-like latency and a throttle.
//!
//! `E2E_PARTS=throughput,latency,pace` (the default: all three) picks the parts.
//!
//! throughput: `E2E_ROWS` rows (20,000), `E2E_RUNS` times (2), each on a fresh emulator with no
//! latency and no limit and a fresh journal (WAL, `synchronous=FULL`):
//! `payout run FILE --emulator --endpoint-url URL --journal J --rate 100000 --concurrency 32`
//! (`E2E_CONCURRENCY` to change 32): rows/s over the whole process and over its paying phase
//! (first SendBonus to last payment). Then the same rows through a plain loop of the real
//! `aws-sdk-mturk` client, one SendBonus after another, no journal; and the same loop in
//! Python's boto3 (up to 5,000 rows; skipped where python3 has no boto3), the loop researchers
//! write today.
//!
//! latency: the same two with 50–100 ms per answer and no limit (`E2E_LATENCY_ROWS=5000,300`:
//! payout's rows, the loop's rows): with nothing to wait for, a sequential loop on 127.0.0.1 is
//! bound by the CPU just as payout is, so the ratio only means something here.
//!
//! pace: for R in `PACE_E2E_LIMITS` (10,20,50,100) the emulator answers after 50–100 ms and
//! throttles above R requests in any one-second window; payout runs with NO `--rate` (adaptive
//! from its default start up to `--max-rate` 200/s, default concurrency 16, or
//! `PACE_E2E_CONCURRENCY`), on a fresh journal and emulator each time. Printed: payments per
//! second from the first SendBonus to the last payment as a share of R, and the share of the
//! emulator's requests that it throttled. Batch sizes: `PACE_E2E_ROWS` (600 and 2,000 for every
//! R); 2,000 rows at R = 10 take 200 s, the whole default matrix about 8 minutes.

mod support;

use std::time::{Duration, Instant};

use payout::emulator::EmulatorConfig;
use support::*;

fn main() {
    let parts: Vec<String> = env_list(
        "E2E_PARTS",
        &["throughput".into(), "latency".into(), "pace".into()],
    );
    println!("end_to_end: {}; payout = {}", machine(), payout_bin());
    if parts.iter().any(|p| p == "throughput") {
        throughput();
    }
    if parts.iter().any(|p| p == "latency") {
        latency();
    }
    if parts.iter().any(|p| p == "pace") {
        pace();
    }
}

fn throughput() {
    let n: usize = env_list("E2E_ROWS", &[20_000usize])[0];
    let runs: usize = env_list("E2E_RUNS", &[2usize])[0];
    let concurrency: u32 = env_list("E2E_CONCURRENCY", &[32u32])[0];
    let dir = scratch();
    let file = dir.path().join(format!("b{n}.csv"));
    write_csv(&file, n);
    println!(
        "\nthroughput: {n} rows, no latency, no limit, durable journal, --rate 100000 --concurrency {concurrency}"
    );
    for run in 1..=runs {
        let load = machine();
        let p = payout_run(
            &file,
            dir.path(),
            run,
            concurrency,
            EmulatorConfig::default(),
        );
        let s = sequential_loop(n, run, EmulatorConfig::default());
        println!(
            "  run {run} ({load}): payout {:.0} rows/s whole process, {:.0} rows/s paying; sequential SDK loop {:.0} rows/s; ratio {:.2}× (whole) / {:.2}× (paying)",
            p.whole,
            p.paying,
            s,
            p.whole / s,
            p.paying / s
        );
        if let Some(b) = boto3_loop(n.min(5000), run) {
            println!(
                "  run {run}: boto3 loop {b:.0} rows/s; ratio {:.1}× (whole) / {:.1}× (paying)",
                p.whole / b,
                p.paying / b
            );
        }
    }
}

/// The same comparison where the platform takes MTurk-like time to answer: what concurrency
/// is for. `E2E_LATENCY_ROWS=payout,loop` rows (5000,300).
fn latency() {
    let sizes: Vec<usize> = env_list("E2E_LATENCY_ROWS", &[5000usize, 300]);
    let (n, m) = (sizes[0], *sizes.get(1).unwrap_or(&300));
    let config = || EmulatorConfig {
        latency: Duration::from_millis(50),
        latency_jitter: Duration::from_millis(50),
        ..EmulatorConfig::default()
    };
    let dir = scratch();
    let file = dir.path().join(format!("b{n}.csv"));
    write_csv(&file, n);
    println!(
        "\nlatency: 50–100 ms per answer, no limit: payout {n} rows at --rate 100000 --concurrency 32, the loop {m} rows"
    );
    let load = machine();
    let p = payout_run(&file, dir.path(), 0, 32, config());
    let s = sequential_loop(m, 0, config());
    println!(
        "  ({load}): payout {:.0} rows/s whole process, {:.0} rows/s paying; sequential SDK loop {:.1} rows/s; ratio {:.0}× (whole) / {:.0}× (paying)",
        p.whole,
        p.paying,
        s,
        p.whole / s,
        p.paying / s
    );
}

struct PayoutRun {
    whole: f64,
    paying: f64,
}

/// One `payout run` of `file` on a fresh journal and emulator: rows/s over the whole process
/// and over the paying phase, and where the CPU went.
fn payout_run(
    file: &std::path::Path,
    dir: &std::path::Path,
    run: usize,
    c: u32,
    config: EmulatorConfig,
) -> PayoutRun {
    let emu = emulator(config);
    let h = emu.handle();
    let journal = dir.join(format!("throughput-{run}.sqlite"));
    let url = emu.url();
    let c = c.to_string();
    let args = run_args(
        file,
        &url,
        &journal,
        &["--rate", "100000", "--concurrency", &c, "--quiet"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let own = own_cpu();
    let proc = Watched::spawn(&args, dir);
    let first = first_send_bonus(&h, proc.pid, proc.started, Duration::from_secs(1800));
    let end = proc.wait();
    let emulator_cpu = own_cpu().saturating_sub(own);
    let first = first.join().expect("watcher");
    let ledger = h.ledger();
    let n = ledger.len();
    assert_eq!(end.code, 0, "payout paid everything:\n{}", end.stderr());
    assert!(h.double_payments().is_empty(), "nothing paid twice");
    let first_ms = first.map_or(0, |f| f.clock_ms);
    let last_ms = ledger.iter().map(|p| p.time_ms).max().unwrap_or(first_ms);
    let paying = (last_ms.saturating_sub(first_ms)).max(1) as f64 / 1000.0;
    println!(
        "    payout: {n} paid in {:.2} s wall, first SendBonus at {:.2} s, {:.2} s from it to the last payment; CPU: payout {:.2} s ({:.0} µs a row), emulator {:.2} s; peak RSS {:.1} MiB",
        secs(end.wall),
        first.map_or(0.0, |f| secs(f.at)),
        paying,
        secs(end.cpu),
        1e6 * secs(end.cpu) / n as f64,
        secs(emulator_cpu),
        mib(end.max_rss)
    );
    let _ = std::fs::remove_file(&journal);
    PayoutRun {
        whole: n as f64 / secs(end.wall),
        paying: n as f64 / paying,
    }
}

/// A plain loop of the real SDK client against a fresh emulator: each SendBonus awaited before
/// the next is sent, nothing recorded. Answers rows/s.
fn sequential_loop(n: usize, run: usize, config: EmulatorConfig) -> f64 {
    use aws_sdk_mturk::config::{BehaviorVersion, Credentials, Region};
    let emu = emulator(config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let conf = aws_sdk_mturk::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(emu.url())
        .credentials_provider(Credentials::new(
            "AKIDPAYOUTBENCH",
            "payout-bench",
            None,
            None,
            "bench",
        ))
        .build();
    let client = aws_sdk_mturk::Client::from_conf(conf);
    let own = own_cpu();
    let elapsed = rt.block_on(async {
        let start = Instant::now();
        for i in 0..n {
            client
                .send_bonus()
                .worker_id(format!("A{i:012}"))
                .assignment_id(format!("3ASSIGN{i:023}"))
                .bonus_amount(format!("{}.{:02}", i % 5, 1 + i % 99))
                .reason(format!("Bonus for round {}, thanks!", i % 7))
                .unique_request_token(format!("seq-{run}-{i}"))
                .send()
                .await
                .expect("SendBonus");
        }
        start.elapsed()
    });
    let cpu = own_cpu().saturating_sub(own);
    let paid = emu.handle().stats().payments;
    assert_eq!(paid, n as u64, "the loop paid every row");
    println!(
        "    sequential SDK loop: {n} paid in {:.2} s; CPU (client + emulator) {:.2} s",
        secs(elapsed),
        secs(cpu)
    );
    n as f64 / secs(elapsed)
}

fn pace() {
    let limits: Vec<u32> = env_list("PACE_E2E_LIMITS", &[10, 20, 50, 100]);
    let sizes: Vec<usize> = env_list("PACE_E2E_ROWS", &[600, 2000]);
    let concurrency: Option<u32> = std::env::var("PACE_E2E_CONCURRENCY")
        .ok()
        .and_then(|s| s.parse().ok());
    println!(
        "\npace: adaptive (no --rate), concurrency {}, latency 50–100 ms, throttle R requests in any 1 s window",
        concurrency.map_or("16 (default)".into(), |c| c.to_string())
    );
    let dir = scratch();
    for &n in &sizes {
        write_csv(&dir.path().join(format!("b{n}.csv")), n);
    }
    for &limit in &limits {
        for &n in &sizes {
            let emu = emulator(EmulatorConfig {
                latency: Duration::from_millis(50),
                latency_jitter: Duration::from_millis(50),
                throttle_rps: Some(limit),
                ..EmulatorConfig::default()
            });
            let h = emu.handle();
            let url = emu.url();
            let file = dir.path().join(format!("b{n}.csv"));
            let journal = dir.path().join(format!("pace-{limit}-{n}.sqlite"));
            let c = concurrency.map(|c| c.to_string());
            let more: Vec<&str> = match &c {
                Some(c) => vec!["--concurrency", c],
                None => Vec::new(),
            };
            let args = run_args(&file, &url, &journal, &more);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let load = machine();
            let proc = Watched::spawn(&args, dir.path());
            let first = first_send_bonus(&h, proc.pid, proc.started, Duration::from_secs(1800));
            let end = proc.wait();
            let first_ms = first.join().expect("watcher").map_or(0, |f| f.clock_ms);
            let ledger = h.ledger();
            let stats = h.stats();
            if end.code != 0 || ledger.len() != n {
                println!("{}", end.stderr());
            }
            let last_ms = ledger.iter().map(|p| p.time_ms).max().unwrap_or(first_ms);
            let span = (last_ms.saturating_sub(first_ms)).max(1) as f64 / 1000.0;
            let rate = ledger.len() as f64 / span;
            let pace_line = end
                .lines
                .iter()
                .rev()
                .find(|(_, l)| l.contains("pace"))
                .map(|(_, l)| l.trim().to_owned())
                .unwrap_or_default();
            println!(
                "  R={limit:3} N={n:4}: {:.1} paid/s over {:.1} s → {:.3} of R; throttled {} of {} requests ({:.2} %), {} SendBonus calls; exit {}; {load}",
                rate,
                span,
                rate / f64::from(limit),
                stats.throttled,
                stats.total_requests,
                100.0 * stats.throttled as f64 / stats.total_requests.max(1) as f64,
                send_bonus_calls(&h),
                end.code,
            );
            if !pace_line.is_empty() {
                println!("          last progress line: {pace_line}");
            }
            let _ = std::fs::remove_file(&journal);
        }
    }
}

/// The loop researchers write today: Python's boto3, one `send_bonus` after another, on a
/// fresh emulator with no latency. `None` (and a line saying so) without python3 and boto3.
fn boto3_loop(n: usize, run: usize) -> Option<f64> {
    const SCRIPT: &str = r#"
import sys, time, boto3
from botocore.config import Config
url, n, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = boto3.client("mturk", endpoint_url=url, region_name="us-east-1",
                 aws_access_key_id="AKIDPAYOUTBENCH", aws_secret_access_key="payout-bench",
                 config=Config(retries={"max_attempts": 1}))
start = time.monotonic()
for i in range(n):
    c.send_bonus(WorkerId="A%012d" % i, AssignmentId="3ASSIGN%023d" % i,
                 BonusAmount="%d.%02d" % (i % 5, 1 + i % 99),
                 Reason="Bonus for round %d, thanks!" % (i % 7),
                 UniqueRequestToken="boto-%s-%d" % (run, i))
print(time.monotonic() - start)
"#;
    let emu = emulator(EmulatorConfig::default());
    let out = std::process::Command::new("python3")
        .args(["-c", SCRIPT, &emu.url(), &n.to_string(), &run.to_string()])
        .output();
    let elapsed: Option<f64> = match &out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().parse().ok(),
        _ => None,
    };
    let Some(elapsed) = elapsed else {
        println!("    boto3 loop: skipped (needs python3 with boto3)");
        return None;
    };
    assert_eq!(
        emu.handle().stats().payments,
        n as u64,
        "the loop paid every row"
    );
    println!("    boto3 loop: {n} paid in {elapsed:.2} s");
    Some(n as f64 / elapsed)
}
