//! The two exactly-once scenarios a tester broke, end to end with the real binary, over many
//! seeds: 5xx answers after the payment was applied with a Ctrl-C and a resume past MTurk's
//! 24-hour token window; and same-amount bonuses of one assignment under dropped connections
//! before and after the apply, a kill, and the same command again.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use payout::emulator::{BackgroundEmulator, EmulatorConfig, FaultScope};

use crate::support::*;

/// Seeds per scenario (`PAYOUT_SEEDS` to run more).
fn seeds() -> u64 {
    std::env::var("PAYOUT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
}

/// The run command for `file` against `emu`, with retries that wait long enough for a Ctrl-C
/// to land while some payments wait for theirs.
fn command(file: &std::path::Path, emu: &BackgroundEmulator, backoff_ms: &str) -> Vec<String> {
    [
        "run",
        file.to_str().unwrap(),
        "--sandbox",
        "--endpoint-url",
        &emu.url(),
        "--testing-endpoint",
        "--backoff-ms",
        backoff_ms,
        "--call-timeout-ms",
        "5000",
        "--rate",
        "5000",
        "--concurrency",
        "16",
        "--max-attempts",
        "30",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Sends SIGINT once the emulator has applied `after` payments and waits for the run to end.
fn interrupt_after(s: &Scratch, emu: &BackgroundEmulator, cmd: &[&str], after: u64) -> Outcome {
    let mut child = s.spawn(cmd);
    let reached = emu
        .handle()
        .wait_for(Duration::from_secs(60), |st| st.payments >= after);
    if reached {
        let sent = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Outcome {
        code: child.wait().unwrap().code().unwrap_or(-1),
        stdout: String::new(),
        stderr,
    }
}

#[test]
fn applied_then_5xx_then_ctrl_c_then_the_same_command_25_hours_later_pays_each_row_once() {
    for seed in 0..seeds() {
        let s = Scratch::new();
        let emu = emulator(EmulatorConfig {
            seed,
            // A quarter of the payments are applied and then answered 500, 503 or 504.
            fault_after_rate: 0.25,
            fault_scope: FaultScope::Mutating,
            ..signed_config()
        });
        let rows = rows(400);
        let file = s.write("bonuses.csv", &csv_text(&rows));
        let cmd = command(&file, &emu, "300");
        let first = interrupt_after(&s, &emu, &strs(&cmd), 150 + seed * 7);
        assert!(first.code == 4 || first.code == 0, "seed {seed}: {first:?}");
        assert!(
            emu.handle().stats().faulted_after_apply > 0,
            "seed {seed}: faults were injected"
        );
        // MTurk forgets tokens after 24 hours: only the journal and the bonus list protect now.
        emu.handle().advance_clock(Duration::from_secs(25 * 3600));
        emu.handle().update_faults(|c| c.fault_after_rate = 0.0);
        let last = s.run(&strs(&command(&file, &emu, "2")));
        assert_eq!(last.code, 0, "seed {seed}: {last:?}");
        assert_paid_exactly_once(&emu.handle(), &rows);
    }
}

/// 100 assignments with 2 or 3 bonuses of the same amount each (rounds of a study).
fn rounds() -> Vec<Row> {
    let mut out = Vec::new();
    for a in 0..100u64 {
        // 46 assignments with 3 rounds and 54 with 2: 246 rows.
        let rounds = if a < 46 { 3 } else { 2 };
        for r in 1..=rounds {
            out.push(Row {
                worker: format!("A{:012}", 1000 + a),
                assignment: format!("3ROUNDS{a:023}"),
                cents: 50,
                reason: format!("Round {r} bonus"),
            });
        }
    }
    out
}

#[test]
fn same_amount_rounds_under_dropped_connections_and_a_kill_pay_each_round_once() {
    let rows = rounds();
    assert_eq!(rows.len(), 246);
    for seed in 0..seeds() {
        let s = Scratch::new();
        let emu = emulator(EmulatorConfig {
            seed: 1000 + seed,
            // Connections dropped before the apply and after it: the client cannot tell.
            drop_before_rate: 0.1,
            lost_rate: 0.1,
            fault_scope: FaultScope::Mutating,
            latency: Duration::from_millis(1),
            latency_jitter: Duration::from_millis(4),
            ..signed_config()
        });
        // Some assignments already had a bonus of the same amount, paid by hand (another
        // tool, another journal): it is not one of these rounds and must not pass for one.
        let by_hand: Vec<Row> = rows
            .iter()
            .filter(|r| r.reason == "Round 1 bonus")
            .step_by(3)
            .map(|r| Row {
                reason: "Paid by hand for the pilot".into(),
                ..r.clone()
            })
            .collect();
        let other = Scratch::new();
        let hand = other.write("by-hand.csv", &csv_text(&by_hand));
        emu.handle().update_faults(|c| {
            c.drop_before_rate = 0.0;
            c.lost_rate = 0.0;
        });
        assert_eq!(other.run(&strs(&command(&hand, &emu, "2"))).code, 0);
        emu.handle().update_faults(|c| {
            c.drop_before_rate = 0.1;
            c.lost_rate = 0.1;
        });
        let file = s.write("rounds.csv", &csv_text(&rows));
        let cmd = command(&file, &emu, "2");
        let mut child = s.spawn(&strs(&cmd));
        let kill_at = by_hand.len() as u64 + 60 + seed * 11;
        let h = emu.handle();
        let reached = h.wait_for(Duration::from_secs(60), |st| st.payments >= kill_at);
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(reached || status.success(), "seed {seed}: {status:?}");
        let last = s.run(&strs(&cmd));
        assert_eq!(last.code, 0, "seed {seed}: {last:?}");
        let stats = h.stats();
        assert!(
            stats.dropped_before_apply > 0 && stats.lost > 0,
            "seed {seed}: faults were injected: {stats:?}"
        );
        let mut all = rows.clone();
        all.extend(by_hand);
        assert_paid_exactly_once(&h, &all);
    }
}

#[test]
fn the_emulator_names_its_faults_and_the_progress_line_says_what_fails() {
    // With every payment answered 503 after it was applied, the run still pays each row once,
    // and while it retries it says so.
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig {
        fault_after_rate: 1.0,
        fault_after_status: payout::emulator::AfterApplyStatus::ServiceUnavailable,
        fault_scope: FaultScope::Mutating,
        ..signed_config()
    });
    let rows = rows(5);
    let file = s.write("b.csv", &csv_text(&rows));
    let mut child = s.spawn(&strs(&command(&file, &emu, "2")));
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut all = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        all.push_str(&line);
        line.clear();
    }
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(0), "{all}");
    assert_paid_exactly_once(&emu.handle(), &rows);
    assert!(
        all.contains("failing: ServiceUnavailable"),
        "the progress line names what fails: {all}"
    );
}
