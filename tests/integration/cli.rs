//! The command line as a newcomer meets it: the README's commands, `payout emulator`, reports.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::support::*;

fn example(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_readme_main_command_pays_the_example_on_the_built_in_emulator() {
    let s = Scratch::new();
    let out = s.run(&["run", &example("bonuses.csv"), "--emulator"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("EMULATOR"),
        "the target is in the banner: {out:?}"
    );
    let text = std::fs::read_to_string(example("bonuses.csv")).unwrap();
    let rows = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    assert!(
        out.stderr.contains(&format!("paid     {rows:>6}")),
        "all {rows} rows paid: {out:?}"
    );
}

/// Starts `payout emulator --port 0` and returns it with the URL it announced.
fn spawn_emulator(s: &Scratch) -> (std::process::Child, String) {
    let mut emu = s
        .payout(&["emulator", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(emu.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_owned();
    (emu, url)
}

#[test]
fn payout_emulator_serves_a_run_and_stops_cleanly_on_sigterm_and_ctrl_c() {
    for signal in ["-TERM", "-INT"] {
        let s = Scratch::new();
        let (mut emu, url) = spawn_emulator(&s);
        let file = s.write("b.csv", &csv_text(&rows(10)));
        let out = s.run(&[
            "run",
            file.to_str().unwrap(),
            "--emulator",
            "--endpoint-url",
            &url,
        ]);
        assert_eq!(out.code, 0, "{out:?}");
        std::process::Command::new("kill")
            .args([signal, &emu.id().to_string()])
            .status()
            .unwrap();
        let status = emu.wait().unwrap();
        assert!(status.success(), "stops cleanly on {signal}: {status:?}");
    }
}

#[test]
fn report_writes_csv_with_one_line_per_row() {
    let s = Scratch::new();
    let (_emu, _file) = paid_batch(&s, 7);
    let out_file = s.path("report.csv");
    let out = s.run(&["report", "--output", out_file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    let text = std::fs::read_to_string(&out_file).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "line,worker_id,assignment_id,amount,fee,reason,outcome,attempts,error,note,request_token,first_sent,finished"
    );
    let body: Vec<&str> = lines.collect();
    assert_eq!(body.len(), 7);
    assert!(body.iter().all(|l| l.contains(",paid,1,")), "{text}");
}

#[test]
fn status_without_a_journal_says_so() {
    let s = Scratch::new();
    let out = s.run(&["status"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no journal at"), "{out:?}");
}

#[test]
fn usage_errors_exit_2() {
    let s = Scratch::new();
    let out = s.run(&["run", "x.csv", "--sandbox", "--production"]);
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn the_batch_results_example_pays_with_amount_column_and_a_default_reason() {
    let s = Scratch::new();
    let file = example("batch-results.csv");
    let refused = s.run(&["run", &file, "--emulator", "--amount-column", "Bonus"]);
    assert_eq!(
        refused.code, 5,
        "no reason column and no --reason: {refused:?}"
    );
    assert!(refused.stderr.contains("no reason column"), "{refused:?}");
    let out = s.run(&[
        "run",
        &file,
        "--emulator",
        "--amount-column",
        "Bonus",
        "--reason",
        "Thanks for the memory task",
        "--json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["summary"]["paid"], 3);
    assert_eq!(v["summary"]["paid_cents"], 125 + 125 + 200);
}
