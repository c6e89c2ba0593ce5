//! The crash matrix: the real binary killed with SIGKILL mid-batch, then the same command again.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use payout::emulator::{BackgroundEmulator, EmulatorConfig};

use crate::support::*;

/// Kill points drawn at random, reproducible with `PAYOUT_CRASH_SEED`.
fn kill_points(rows: u64, count: usize) -> Vec<KillAt> {
    let mut rng = crash_rng();
    let mut payments: Vec<u64> = (0..count).map(|_| rng.u64(1..rows - 10)).collect();
    payments.sort_unstable();
    payments
        .into_iter()
        .map(|p| {
            if rng.bool() {
                KillAt::Payments(p)
            } else {
                KillAt::Requests(rng.u64(1..40))
            }
        })
        .collect()
}

/// A scratch dir, an emulator losing 5 % of answers, `n` rows and the command that pays them.
fn crash_batch(seed: u64, n: usize) -> (Scratch, BackgroundEmulator, Vec<Row>, Vec<String>) {
    let s = Scratch::new();
    let emu = emulator(crash_config(seed));
    let rows = rows(n);
    let file = s.write("bonuses.csv", &csv_text(&rows));
    let mut cmd: Vec<String> = [
        "run",
        file.to_str().unwrap(),
        "--rate",
        "2000",
        "--concurrency",
        "16",
    ]
    .map(String::from)
    .to_vec();
    cmd.extend(target_args(&emu));
    (s, emu, rows, cmd)
}

fn crash_config(seed: u64) -> EmulatorConfig {
    EmulatorConfig {
        seed,
        lost_rate: 0.05,
        latency: Duration::from_millis(2),
        latency_jitter: Duration::from_millis(6),
        ..signed_config()
    }
}

#[test]
fn killed_at_several_points_then_rerun_pays_each_row_exactly_once() {
    let (s, emu, rows, owned) = crash_batch(11, 300);
    let cmd: Vec<&str> = owned.iter().map(String::as_str).collect();
    // Kill points spread over the batch; each run starts where the journal left off.
    for at in kill_points(300, 5) {
        run_and_kill_at(&s, &emu, &cmd, at);
    }
    let last = s.run(&cmd);
    assert_eq!(last.code, 0, "{last:?}");
    assert_paid_exactly_once(&emu.handle(), &rows);
}

#[test]
fn killed_then_resumed_after_the_24_hour_token_window_pays_each_row_exactly_once() {
    let (s, emu, rows, owned) = crash_batch(12, 200);
    let cmd: Vec<&str> = owned.iter().map(String::as_str).collect();
    for at in kill_points(200, 2) {
        run_and_kill_at(&s, &emu, &cmd, at);
        // MTurk forgets tokens after 24 h: only the journal and the bonus list protect now.
        emu.handle().advance_clock(Duration::from_secs(25 * 3600));
    }
    let last = s.run(&cmd);
    assert_eq!(last.code, 0, "{last:?}");
    assert_paid_exactly_once(&emu.handle(), &rows);
}

#[test]
fn after_a_kill_the_journal_holds_no_payment_as_paid_that_the_emulator_did_not_pay() {
    let (s, emu, _rows, owned) = crash_batch(13, 150);
    let cmd: Vec<&str> = owned.iter().map(String::as_str).collect();
    run_and_kill_at(&s, &emu, &cmd, KillAt::Payments(70));
    let report = s.run(&["report", "--format", "json"]);
    assert_eq!(report.code, 0, "{report:?}");
    let lines: Vec<serde_json::Value> = serde_json::from_str(&report.stdout).unwrap();
    let ledger = emu.handle().ledger();
    for l in lines.iter().filter(|l| l["outcome"] == "paid") {
        let token = l["request_token"].as_str().unwrap();
        assert!(
            ledger.iter().any(|p| p.token.as_deref() == Some(token)),
            "journal says paid, emulator never paid line {}",
            l["line"]
        );
    }
    let status = s.run(&["status"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stdout.contains("pending"), "{status:?}");
}

#[test]
fn ctrl_c_drains_calls_in_flight_and_the_batch_resumes() {
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig {
        latency: Duration::from_millis(30),
        ..signed_config()
    });
    let rows = rows(120);
    let file = s.write("bonuses.csv", &csv_text(&rows));
    let t = target_args(&emu);
    let cmd = args(
        &[
            "run",
            file.to_str().unwrap(),
            "--rate",
            "1000",
            "--concurrency",
            "4",
        ],
        &t,
    );
    let child = s.spawn(&cmd);
    assert!(
        emu.handle()
            .wait_for(Duration::from_secs(30), |st| st.payments >= 10)
    );
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out: Outcome = child.wait_with_output().unwrap().into();
    assert_eq!(out.code, 4, "incomplete after Ctrl-C: {out:?}");
    assert!(out.stderr.contains("Stopped on request"), "{out:?}");
    // Drained: nothing was left in flight, so no payment is unknown.
    let status = s.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["unknown"], 0, "{status:?}");
    let paid_so_far = v["paid"].as_u64().unwrap();
    assert_eq!(paid_so_far as usize, emu.handle().ledger().len());

    let last = s.run(&cmd);
    assert_eq!(last.code, 0, "{last:?}");
    assert_paid_exactly_once(&emu.handle(), &rows);
}

#[test]
fn a_second_ctrl_c_quits_at_once_and_the_calls_it_abandoned_are_checked_next_run() {
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig {
        latency: Duration::from_secs(3),
        ..signed_config()
    });
    let rows = rows(40);
    let file = s.write("bonuses.csv", &csv_text(&rows));
    let t = target_args(&emu);
    let cmd = args(
        &[
            "run",
            file.to_str().unwrap(),
            "--rate",
            "1000",
            "--concurrency",
            "4",
        ],
        &t,
    );
    let mut child = s.spawn(&cmd);
    // The balance read and the first payments are under way: the signal handler is installed.
    let started = emu.handle().wait_for(Duration::from_secs(30), |st| {
        st.calls.get("SendBonus").copied().unwrap_or(0) >= 4
    });
    assert!(started);
    let pid = child.id().to_string();
    let interrupt = || {
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    interrupt();
    // A person presses again after seeing the first press answered; so does the test.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("Stopping:") {
        assert_ne!(
            stderr.read_line(&mut seen).unwrap(),
            0,
            "no Stopping line: {seen}"
        );
    }
    interrupt();
    stderr.read_to_string(&mut seen).unwrap();
    let out = Outcome {
        code: child.wait().unwrap().code().unwrap_or(-1),
        stdout: String::new(),
        stderr: seen,
    };
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("Quitting now"), "{out:?}");
    let status = s.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        v["unknown"], 4,
        "the abandoned calls are unknown: {status:?}"
    );

    emu.handle().update_faults(|c| c.latency = Duration::ZERO);
    let last = s.run(&cmd);
    assert_eq!(last.code, 0, "{last:?}");
    assert_paid_exactly_once(&emu.handle(), &rows);
}
