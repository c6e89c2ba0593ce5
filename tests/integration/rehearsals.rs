//! What counts as a rehearsal: a sandbox batch whose every operation got a final answer (not
//! one cancelled or superseded half-way), or a production dry run that could check every
//! operation (for a file over the checked limit, only the part it checked). By the real binary,
//! against emulators standing in for the sandbox and production.

use payout::emulator::{BackgroundEmulator, EmulatorConfig, FaultScope, KnownAssignment};
use payout::money::Cents;

use crate::support::*;

/// An emulator on which exactly these rows' assignments exist, done by their workers.
fn knowing(rows: &[Row], config: EmulatorConfig) -> BackgroundEmulator {
    emulator(EmulatorConfig {
        known: Some(
            rows.iter()
                .map(|r| KnownAssignment {
                    worker_id: r.worker.clone(),
                    assignment_id: r.assignment.clone(),
                    hit_id: "3HITPAYOUTTESTHIT00000000000000".into(),
                })
                .collect(),
        ),
        ..config
    })
}

/// Flags that point a production run at `emu`.
fn production(emu: &BackgroundEmulator) -> Vec<String> {
    let mut t = target_args(emu);
    t[0] = "--production".into();
    t
}

fn sends(emu: &BackgroundEmulator) -> u64 {
    emu.handle()
        .stats()
        .calls
        .get("SendBonus")
        .copied()
        .unwrap_or(0)
}

/// A sandbox batch of `rows` (file `name`) stopped by the account's spend limit after `paid`
/// rows: its name, and the sandbox.
fn stopped_in_sandbox(
    s: &Scratch,
    rows: &[Row],
    paid: usize,
    name: &str,
) -> (String, BackgroundEmulator) {
    let limit: u64 = rows
        .iter()
        .take(paid)
        .map(|r| r.cents + payout::platform::bonus_fee(Cents(r.cents)).0)
        .sum();
    let sandbox = knowing(
        rows,
        EmulatorConfig {
            spend_limit: Some(Cents(limit)),
            ..signed_config()
        },
    );
    let file = s.write(name, &csv_text(rows));
    let t = target_args(&sandbox);
    let out = s.run(&args(
        &[
            "run",
            file.to_str().unwrap(),
            "--concurrency",
            "1",
            "--json",
        ],
        &t,
    ));
    assert_eq!(out.code, 4, "{out:?}");
    assert_eq!(sandbox.handle().ledger().len(), paid);
    sandbox.handle().set_spend_limit(None);
    let batch = json_output(&out)["batch"].as_str().unwrap().to_owned();
    (batch, sandbox)
}

fn assert_not_rehearsed(s: &Scratch, file: &str, rows: &[Row]) {
    let prod = knowing(rows, signed_config());
    let out = s.run(&args(&["run", file, "--yes"], &production(&prod)));
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("has not been rehearsed"), "{out:?}");
    assert_eq!(sends(&prod), 0);
}

#[test]
fn a_cancelled_sandbox_batch_is_no_rehearsal() {
    let s = Scratch::new();
    let rows = rows(20);
    let (batch, sandbox) = stopped_in_sandbox(&s, &rows, 3, "b.csv");
    let out = s.run(&args(&["cancel", &batch], &target_args(&sandbox)));
    assert_eq!(out.code, 0, "{out:?}");
    assert_not_rehearsed(&s, s.path("b.csv").to_str().unwrap(), &rows);
}

#[test]
fn a_superseded_sandbox_batch_is_no_rehearsal() {
    let s = Scratch::new();
    let rows = rows(20);
    let (_, sandbox) = stopped_in_sandbox(&s, &rows, 3, "b.csv");
    // One row the stopped batch had not paid, in a file of its own, supersedes it.
    let one = s.write("one.csv", &csv_text(&rows[10..11]));
    let out = s.run(&args(
        &["run", one.to_str().unwrap(), "--supersede"],
        &target_args(&sandbox),
    ));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("superseded"), "{out:?}");
    assert_not_rehearsed(&s, s.path("b.csv").to_str().unwrap(), &rows);
}

#[test]
fn a_sandbox_batch_that_ran_to_the_end_is_a_rehearsal_and_the_banner_says_what_it_did() {
    let s = Scratch::new();
    let rows = rows(5);
    let (_, sandbox) = stopped_in_sandbox(&s, &rows, 2, "b.csv");
    let f = s.path("b.csv");
    let f = f.to_str().unwrap();
    let out = s.run(&args(&["run", f], &target_args(&sandbox)));
    assert_eq!(out.code, 0, "{out:?}");
    let prod = knowing(&rows, signed_config());
    let out = s.run(&args(&["run", f, "--yes"], &production(&prod)));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("ran to the end (5 done, 0 failed, 0 skipped)"),
        "{out:?}"
    );
    assert_paid_exactly_once(&prod.handle(), &rows);
}

#[test]
fn a_production_dry_run_whose_checks_could_not_be_made_is_not_recorded() {
    let s = Scratch::new();
    let rows = rows(6);
    let file = s.write("b.csv", &csv_text(&rows));
    let f = file.to_str().unwrap();
    // Every GetAssignment and ListBonusPayments answers 500; the balance answers.
    let prod = knowing(
        &rows,
        EmulatorConfig {
            fault_rate: 1.0,
            fault_scope: FaultScope::Checks,
            ..signed_config()
        },
    );
    let out = s.run(&args(
        &["run", f, "--dry-run", "--json", "--max-attempts", "2"],
        &production(&prod),
    ));
    assert_eq!(out.code, 0, "{out:?}");
    let v = json_output(&out);
    assert_eq!(v["preflight"]["passed"], false, "{out:?}");
    assert!(out.stderr.contains("could not be checked"), "{out:?}");
    assert!(out.stderr.contains("not a rehearsal"), "{out:?}");
    assert!(!out.stderr.contains("rehearsal is recorded"), "{out:?}");
    prod.handle().update_faults(|c| c.fault_rate = 0.0);
    let out = s.run(&args(&["run", f, "--yes"], &production(&prod)));
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("has not been rehearsed"), "{out:?}");
    assert_eq!(sends(&prod), 0);
}

#[test]
fn a_dry_run_over_the_checked_limit_rehearses_only_what_it_checked() {
    let s = Scratch::new();
    let rows = rows(12);
    let file = s.write("b.csv", &csv_text(&rows));
    let f = file.to_str().unwrap();
    let prod = knowing(&rows, signed_config());
    let out = s.run(&args(
        &["run", f, "--dry-run", "--json", "--checked-at-most", "5"],
        &production(&prod),
    ));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(json_output(&out)["preflight"]["passed"], true, "{out:?}");
    assert!(
        out.stderr.contains("for the first 5 of 12 operations only"),
        "{out:?}"
    );
    // Production says so, and runs the rest only with --skip-rehearsal.
    let out = s.run(&args(&["run", f, "--yes"], &production(&prod)));
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("rehearsed only in part"), "{out:?}");
    assert!(out.stderr.contains("other 7 operations"), "{out:?}");
    assert!(out.stderr.contains("--skip-rehearsal"), "{out:?}");
    assert_eq!(sends(&prod), 0);
    let out = s.run(&args(
        &["run", f, "--yes", "--skip-rehearsal", "--json"],
        &production(&prod),
    ));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("the other 7 NOT rehearsed"), "{out:?}");
    assert_paid_exactly_once(&prod.handle(), &rows);
}
