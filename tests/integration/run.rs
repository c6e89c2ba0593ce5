//! `payout run` end to end: the real binary, the real SDK, the emulator over loopback.

use std::time::Duration;

use payout::emulator::{EmulatorConfig, KnownAssignment};
use payout::money::Cents;

use crate::support::*;

#[test]
fn a_thousand_rows_are_paid_exactly_once_and_journal_report_and_ledger_agree() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let rows = rows(1000);
    let file = s.write("bonuses.csv", &csv_text(&rows));
    let t = target_args(&emu);
    let out = s.run(&args(
        &[
            "run",
            file.to_str().unwrap(),
            "--rate",
            "3000",
            "--concurrency",
            "32",
            "--json",
        ],
        &t,
    ));
    assert_eq!(out.code, 0, "{out:?}");
    assert_paid_exactly_once(&emu.handle(), &rows);

    let summary: serde_json::Value = serde_json::from_str(&out.stdout).expect("--json is JSON");
    assert_eq!(summary["summary"]["paid"], 1000);
    let total: u64 = rows.iter().map(|r| r.cents).sum();
    assert_eq!(summary["summary"]["paid_cents"], total);

    // The report lists every row as paid, with the token the emulator saw for it.
    let report = s.run(&["report", "--format", "json"]);
    assert_eq!(report.code, 0, "{report:?}");
    let lines: Vec<serde_json::Value> = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(lines.len(), 1000);
    let ledger = emu.handle().ledger();
    for (line, row) in lines.iter().zip(&rows) {
        assert_eq!(line["outcome"], "paid");
        assert_eq!(line["worker_id"], row.worker.as_str());
        let token = line["request_token"].as_str().unwrap();
        let paid: Vec<_> = ledger
            .iter()
            .filter(|p| p.token.as_deref() == Some(token))
            .collect();
        assert_eq!(paid.len(), 1, "token {token} paid {} times", paid.len());
        assert_eq!(paid[0].assignment_id, row.assignment);
    }
    let balance_spent: u64 = rows
        .iter()
        .map(|r| r.cents + payout::platform::bonus_fee(Cents(r.cents)).0)
        .sum();
    assert_eq!(emu.handle().balance(), Cents(1_000_000 - balance_spent));

    // Running the same command again pays nothing more.
    let again = s.run(&args(&["run", file.to_str().unwrap()], &t));
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("nothing left to pay"), "{again:?}");
    assert_eq!(emu.handle().ledger().len(), 1000);
}

#[test]
fn lost_answers_faults_and_throttling_still_pay_each_valid_row_once() {
    let s = Scratch::new();
    let good = rows(400);
    let mut known: Vec<KnownAssignment> = good
        .iter()
        .map(|r| KnownAssignment {
            worker_id: r.worker.clone(),
            assignment_id: r.assignment.clone(),
            hit_id: "3HIT0000000000000000000000000".into(),
        })
        .collect();
    // A worker who exists but did not do the assignment we name for them.
    known.push(KnownAssignment {
        worker_id: "AOTHERWORKER01".into(),
        assignment_id: "3OTHERASSIGNMENT".into(),
        hit_id: "3HIT0000000000000000000000000".into(),
    });
    let emu = emulator(EmulatorConfig {
        seed: 42,
        lost_rate: 0.05,
        fault_rate: 0.05,
        throttle_rps: Some(150),
        known: Some(known),
        ..signed_config()
    });
    let bad = [
        Row {
            worker: good[0].worker.clone(),
            assignment: "3NOSUCHASSIGNMENT".into(),
            cents: 100,
            reason: "bad".into(),
        },
        Row {
            worker: "AOTHERWORKER01".into(),
            assignment: good[1].assignment.clone(),
            cents: 100,
            reason: "mismatch".into(),
        },
    ];
    let mut all = good.clone();
    all.extend(bad.iter().cloned());
    let file = s.write("bonuses.csv", &csv_text(&all));
    let out = s.run(&args(
        &[
            "run",
            file.to_str().unwrap(),
            "--rate",
            "400",
            "--concurrency",
            "16",
            "--max-attempts",
            "12",
        ],
        &target_args(&emu),
    ));
    assert_eq!(out.code, 3, "some rows failed: {out:?}");
    assert_paid_exactly_once(&emu.handle(), &good);
    let stats = emu.handle().stats();
    assert!(stats.throttled > 0, "the throttle limit was hit: {stats:?}");
    assert!(
        stats.lost > 0 && stats.faulted > 0,
        "faults were injected: {stats:?}"
    );
    assert!(
        out.stderr.contains("does not exist"),
        "MTurk's message is shown: {out:?}"
    );
    assert!(
        out.stderr.contains(&format!("line {}", good.len() + 2)),
        "{out:?}"
    );

    let report = s.run(&["report", "--format", "json"]);
    let lines: Vec<serde_json::Value> = serde_json::from_str(&report.stdout).unwrap();
    let failed: Vec<_> = lines.iter().filter(|l| l["outcome"] == "failed").collect();
    assert_eq!(failed.len(), 2, "{failed:#?}");
    assert!(
        failed
            .iter()
            .all(|l| !l["error"].as_str().unwrap().is_empty())
    );
}

#[test]
fn insufficient_funds_mid_batch_stops_cleanly_and_the_same_command_pays_the_rest_once() {
    let s = Scratch::new();
    let rows = rows(60);
    let cost = |r: &Row| r.cents + payout::platform::bonus_fee(Cents(r.cents)).0;
    let limit: u64 = rows.iter().take(25).map(cost).sum();
    let emu = emulator(EmulatorConfig {
        spend_limit: Some(Cents(limit)),
        ..signed_config()
    });
    let file = s.write("bonuses.csv", &csv_text(&rows));
    let t = target_args(&emu);
    let cmd = args(
        &[
            "run",
            file.to_str().unwrap(),
            "--concurrency",
            "4",
            "--rate",
            "500",
        ],
        &t,
    );
    let first = s.run(&cmd);
    assert_eq!(first.code, 4, "incomplete: {first:?}");
    assert!(first.stderr.contains("insufficient funds"), "{first:?}");
    assert!(
        first.stderr.contains("requester.mturk.com/prepayments"),
        "{first:?}"
    );
    let paid_first = emu.handle().ledger().len();
    assert!(
        (20..=25).contains(&paid_first),
        "paid {paid_first} before funds ran out"
    );

    emu.handle().set_spend_limit(None);
    let second = s.run(&cmd);
    assert_eq!(second.code, 0, "{second:?}");
    assert_paid_exactly_once(&emu.handle(), &rows);
}

#[test]
fn a_balance_too_small_for_the_batch_stops_before_the_first_payment() {
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig {
        balance: Cents(500),
        ..signed_config()
    });
    let file = s.write("bonuses.csv", &csv_text(&rows(20)));
    let out = s.run(&args(&["run", file.to_str().unwrap()], &target_args(&emu)));
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("is missing"), "{out:?}");
    assert_eq!(emu.handle().stats().calls.get("SendBonus"), None);
}

#[test]
fn dry_run_shows_the_plan_and_sends_and_journals_nothing() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let file = s.write(
        "b.csv",
        "WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1.00,r\nA2,X2,0.03,r\n",
    );
    let out = s.run(&args(
        &["run", file.to_str().unwrap(), "--dry-run"],
        &target_args(&emu),
    ));
    assert_eq!(out.code, 0, "{out:?}");
    // $1.03 in bonuses, fees $0.20 + $0.01 (minimum), total $1.24.
    for want in [
        "2 bonuses to 2 workers",
        "$1.03",
        "$0.21",
        "$1.24",
        "$10,000.00",
    ] {
        assert!(out.stderr.contains(want), "missing {want}: {out:?}");
    }
    assert_eq!(emu.handle().stats().calls.get("SendBonus"), None);
    assert!(!s.journal().exists(), "a dry run writes no journal");
}

#[test]
fn production_needs_yes_and_makes_no_call_without_it() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let file = s.write("b.csv", &csv_text(&rows(3)));
    let out = s.run(&[
        "run",
        file.to_str().unwrap(),
        "--production",
        "--endpoint-url",
        &emu.url(),
    ]);
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("--yes"), "{out:?}");
    assert_eq!(emu.handle().stats().total_requests, 0);
}

#[test]
fn resuming_a_batch_on_another_target_is_refused() {
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig {
        spend_limit: Some(Cents(1)),
        ..signed_config()
    });
    let file = s.write("b.csv", &csv_text(&rows(3)));
    let first = s.run(&args(&["run", file.to_str().unwrap()], &target_args(&emu)));
    assert_eq!(first.code, 4, "{first:?}");
    let other = s.run(&["resume", "--emulator"]);
    assert_eq!(other.code, 6, "{other:?}");
    assert!(other.stderr.contains("SANDBOX"), "{other:?}");

    emu.handle().set_spend_limit(None);
    let resumed = s.run(&args(&["resume"], &target_args(&emu)));
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_paid_exactly_once(&emu.handle(), &rows(3));
    let status = s.run(&["status", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["paid"], 3);
    assert_eq!(v["pending"], 0);
}

#[test]
fn a_row_paid_by_an_earlier_batch_is_skipped_unless_repeat_is_allowed() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let t = target_args(&emu);
    let first_rows = rows(5);
    let a = s.write("a.csv", &csv_text(&first_rows));
    assert_eq!(s.run(&args(&["run", a.to_str().unwrap()], &t)).code, 0);
    // A second file that overlaps the first in three rows.
    let mut second_rows = first_rows[2..].to_vec();
    second_rows.extend(rows(8)[5..].iter().cloned());
    let b = s.write("b.csv", &csv_text(&second_rows));
    let out = s.run(&args(&["run", b.to_str().unwrap(), "--json"], &t));
    assert_eq!(out.code, 0, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["summary"]["skipped"], 3);
    assert_eq!(v["summary"]["paid"], 3);
    assert_paid_exactly_once(&emu.handle(), &rows(8));

    let again = s.run(&args(
        &["run", b.to_str().unwrap(), "--allow-repeat", "--json"],
        &t,
    ));
    assert_eq!(again.code, 0, "{again:?}");
    let v: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(v["summary"]["paid"], 6, "a deliberate repeat pays again");
    assert_eq!(emu.handle().ledger().len(), 14);
}

#[test]
fn allowed_duplicates_are_each_paid_once_with_their_own_token() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let mut rows = rows(3);
    rows.push(rows[0].clone());
    let file = s.write("b.csv", &csv_text(&rows));
    let refused = s.run(&args(&["run", file.to_str().unwrap()], &target_args(&emu)));
    assert_eq!(refused.code, 5, "{refused:?}");
    assert!(
        refused.stderr.contains("line 5: repeats line 2"),
        "{refused:?}"
    );
    let out = s.run(&args(
        &["run", file.to_str().unwrap(), "--allow-duplicates"],
        &target_args(&emu),
    ));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(emu.handle().ledger().len(), 4);
    let tokens: std::collections::HashSet<_> =
        emu.handle().ledger().into_iter().map(|p| p.token).collect();
    assert_eq!(tokens.len(), 4);
}

#[test]
fn a_second_run_on_the_same_journal_is_refused_while_the_first_runs() {
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig {
        latency: Duration::from_millis(20),
        ..signed_config()
    });
    let file = s.write("b.csv", &csv_text(&rows(200)));
    let t = target_args(&emu);
    let cmd = args(
        &[
            "run",
            file.to_str().unwrap(),
            "--concurrency",
            "1",
            "--rate",
            "1000",
        ],
        &t,
    );
    let mut first = s.spawn(&cmd);
    let h = emu.handle();
    assert!(
        h.wait_for(Duration::from_secs(30), |st| st.payments >= 3),
        "the first run started paying"
    );
    let second = s.run(&cmd);
    assert_eq!(second.code, 6, "{second:?}");
    assert!(
        second.stderr.contains("another payout is running"),
        "{second:?}"
    );
    assert!(
        !second.stderr.contains("To pay now"),
        "the refused run stopped before the payment stage: {second:?}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    // After the first is gone, the same command finishes the batch.
    let third = s.run(&cmd);
    assert_eq!(third.code, 0, "{third:?}");
    assert_paid_exactly_once(&h, &rows(200));
}

#[test]
fn the_secret_key_never_reaches_output_journal_or_report() {
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig {
        lost_rate: 0.1,
        fault_rate: 0.1,
        seed: 3,
        ..signed_config()
    });
    let file = s.write("b.csv", &csv_text(&rows(50)));
    let t = target_args(&emu);
    let mut outputs = vec![s.run(&args(&["run", file.to_str().unwrap(), "--json"], &t))];
    outputs.push(s.run(&["status"]));
    outputs.push(s.run(&["report", "--format", "json"]));
    outputs.push(s.run(&["report"]));
    // A wrong secret makes MTurk's error path run too.
    let mut bad = s.payout(&args(
        &["run", file.to_str().unwrap(), "--allow-repeat"],
        &t,
    ));
    bad.env("AWS_SECRET_ACCESS_KEY", format!("{SECRET}-wrong"));
    outputs.push(bad.output().unwrap().into());
    assert!(
        outputs.last().unwrap().stderr.contains("signature"),
        "{:?}",
        outputs.last()
    );
    for o in &outputs {
        assert!(
            !o.stdout.contains(SECRET) && !o.stderr.contains(SECRET),
            "{o:?}"
        );
    }
    let bytes = journal_bytes(&s.journal());
    assert!(!bytes.is_empty());
    assert!(
        !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the secret is in the journal"
    );
}

#[test]
fn invalid_credentials_stop_the_batch_with_the_fix() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let file = s.write("b.csv", &csv_text(&rows(5)));
    let mut cmd = s.payout(&args(&["run", file.to_str().unwrap()], &target_args(&emu)));
    cmd.env("AWS_ACCESS_KEY_ID", "AKIDUNKNOWN");
    let out: Outcome = cmd.output().unwrap().into();
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("AWS_ACCESS_KEY_ID"),
        "the fix is named: {out:?}"
    );
    assert_eq!(emu.handle().ledger().len(), 0);
}

#[test]
fn temporary_credentials_are_refused_before_any_call() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let file = s.write("b.csv", &csv_text(&rows(2)));
    let mut cmd = s.payout(&args(&["run", file.to_str().unwrap()], &target_args(&emu)));
    cmd.env("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLE");
    let out: Outcome = cmd.output().unwrap().into();
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("temporary"), "{out:?}");
    assert_eq!(emu.handle().stats().total_requests, 0);
}

#[test]
fn a_production_dry_run_needs_no_yes_and_only_reads() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let file = s.write("b.csv", &csv_text(&rows(3)));
    let out = s.run(&[
        "run",
        file.to_str().unwrap(),
        "--production",
        "--dry-run",
        "--endpoint-url",
        &emu.url(),
        "--testing-endpoint",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("PRODUCTION"), "{out:?}");
    let calls = emu.handle().stats().calls;
    assert_eq!(calls.get("GetAccountBalance"), Some(&1), "{calls:?}");
    // Issue 9 added read-only preflight checks to dry runs: still nothing but reads.
    let reads = ["GetAccountBalance", "GetAssignment", "ListBonusPayments"];
    assert!(
        calls.keys().all(|k| reads.contains(&k.as_str())),
        "only reads: {calls:?}"
    );
    assert!(emu.handle().ledger().is_empty());
}

#[test]
fn a_dry_run_that_cannot_read_the_balance_is_refused() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let file = s.write("b.csv", &csv_text(&rows(3)));
    let mut cmd = s.payout(&args(
        &["run", file.to_str().unwrap(), "--dry-run"],
        &target_args(&emu),
    ));
    cmd.env("AWS_SECRET_ACCESS_KEY", "wrong");
    let out: Outcome = cmd.output().unwrap().into();
    assert_eq!(out.code, 6, "{out:?}");
    assert!(
        out.stderr.contains("failed to read the account balance"),
        "{out:?}"
    );
}

#[test]
fn credentials_come_from_a_named_profile_in_the_shared_credentials_file() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    std::fs::create_dir_all(s.path(".aws")).unwrap();
    s.write(
        ".aws/credentials",
        &format!(
            "[default]\naws_access_key_id = AKIDWRONG\naws_secret_access_key = wrong\n\n[study]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET}\n"
        ),
    );
    let file = s.write("b.csv", &csv_text(&rows(3)));
    let mut cmd = s.payout(&args(
        &["run", file.to_str().unwrap(), "--profile", "study"],
        &target_args(&emu),
    ));
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let out: Outcome = cmd.output().unwrap().into();
    assert_eq!(out.code, 0, "{out:?}");
    assert_paid_exactly_once(&emu.handle(), &rows(3));
    assert_eq!(emu.handle().stats().bad_signatures, 0);
}
