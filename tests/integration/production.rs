//! Production's gate, through the real binary against emulators standing in for the sandbox and
//! production: no rehearsal → refused with zero calls and the command to run; a finished sandbox
//! run or a passing production dry run of the same content → allowed, still confirmed (typed at
//! a real pseudo-terminal, or --yes); an edited file needs its own rehearsal; --skip-rehearsal is
//! recorded; preflight's findings one line each; the caps refuse before any call.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use payout::emulator::{BackgroundEmulator, EmulatorConfig, KnownAssignment};

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// A pseudo-terminal to drive prompts with
// ---------------------------------------------------------------------------------------------

/// A child whose stdin, stdout and stderr are a pseudo-terminal's slave; the test reads and
/// types through the master. Every wait is bounded; nothing sleeps to synchronise.
pub struct Pty {
    master: std::fs::File,
    child: Child,
    output: mpsc::Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Pty {
    pub fn spawn(cmd: Command) -> Pty {
        Pty::spawn_colored(cmd, false)
    }

    /// Like [`Pty::spawn`]; `color` leaves `NO_COLOR` unset so that payout may colour.
    pub fn spawn_colored(mut cmd: Command, color: bool) -> Pty {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two new descriptors into the two ints; the null name, termios
        // and window size mean "none given".
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened by openpty and are owned by nothing else.
        let (master, slave) = unsafe {
            (
                std::fs::File::from_raw_fd(master),
                OwnedFd::from_raw_fd(slave),
            )
        };
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        if color {
            cmd.env_remove("NO_COLOR");
        } else {
            // No colour codes between the words the test looks for.
            cmd.env("NO_COLOR", "1");
        }
        let child = cmd.spawn().expect("spawn payout on a pty");
        // The parent's copies of the slave must close, or reading the master never ends.
        drop(cmd);
        let mut reader = master.try_clone().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child has exited and the slave is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Pty {
            master,
            child,
            output,
            seen: Vec::new(),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }

    /// Reads until `what` has appeared (panics with everything seen after `timeout`).
    pub fn wait_for(&mut self, what: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while !self.text().contains(what) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.seen.extend(bytes),
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("no {what:?} within {timeout:?}; seen:\n{}", self.text());
                }
            }
        }
        self.text()
    }

    pub fn type_line(&mut self, line: &str) {
        self.master
            .write_all(format!("{line}\n").as_bytes())
            .expect("type into the pty");
    }

    /// Waits for the child to exit; returns its status and everything it wrote.
    pub fn finish(mut self, timeout: Duration) -> (i32, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Drain what is left (bounded: the reader ends at EIO once the slave closes).
                while let Ok(bytes) = self.output.recv_timeout(Duration::from_secs(5)) {
                    self.seen.extend(bytes);
                }
                return (status.code().unwrap_or(-1), self.text());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let _ = self.child.kill();
                panic!(
                    "payout did not exit within {timeout:?}; seen:\n{}",
                    self.text()
                );
            }
            // Reading output is what waiting looks like here: it also keeps the pty drained.
            if let Ok(bytes) = self
                .output
                .recv_timeout(left.min(Duration::from_millis(50)))
            {
                self.seen.extend(bytes);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// An emulator on which exactly these rows' assignments exist, done by their workers.
fn knowing(rows: &[Row]) -> BackgroundEmulator {
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
        ..signed_config()
    })
}

/// Flags that point a production run at `emu`.
fn production(emu: &BackgroundEmulator) -> Vec<String> {
    vec![
        "--production".into(),
        "--endpoint-url".into(),
        emu.url(),
        "--testing-endpoint".into(),
        "--backoff-ms".into(),
        "2".into(),
        "--call-timeout-ms".into(),
        "5000".into(),
    ]
}

fn sends(emu: &BackgroundEmulator) -> u64 {
    emu.handle()
        .stats()
        .calls
        .get("SendBonus")
        .copied()
        .unwrap_or(0)
}

/// Runs the whole file in the sandbox (`sandbox`), on the scratch's journal: a rehearsal.
fn rehearse_in_sandbox(s: &Scratch, file: &str, rows: &[Row]) {
    let sandbox = knowing(rows);
    let out = s.run(&args(&["run", file], &target_args(&sandbox)));
    assert_eq!(out.code, 0, "{out:?}");
    assert_paid_exactly_once(&sandbox.handle(), rows);
}

// ---------------------------------------------------------------------------------------------
// The rehearsal gate
// ---------------------------------------------------------------------------------------------

#[test]
fn production_without_a_rehearsal_is_refused_with_zero_calls_and_the_command_to_run() {
    let s = Scratch::new();
    let rows = rows(5);
    let file = s.write("bonuses.csv", &csv_text(&rows));
    let f = file.to_str().unwrap();
    let prod = knowing(&rows);
    let out = s.run(&args(&["run", f, "--yes", "--json"], &production(&prod)));
    let v = json_output(&out);
    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(v["error"]["kind"], "confirmation");
    assert!(out.stderr.contains("has not been rehearsed"), "{out:?}");
    assert!(
        out.stderr.contains(&format!("payout run {f} --sandbox")),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains(&format!("payout run {f} --production --dry-run")),
        "{out:?}"
    );
    assert_eq!(prod.handle().stats().total_requests, 0);
}

#[test]
fn a_finished_sandbox_run_rehearses_production_which_still_needs_confirming() {
    let s = Scratch::new();
    let rows = rows(6);
    let file = s.write("bonuses.csv", &csv_text(&rows));
    let f = file.to_str().unwrap();
    rehearse_in_sandbox(&s, f, &rows);
    let prod = knowing(&rows);
    // No terminal and no --yes: refused before any call, rehearsal or not.
    let out = s.run(&args(&["run", f, "--json"], &production(&prod)));
    let v = json_output(&out);
    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(v["error"]["kind"], "confirmation");
    assert!(out.stderr.contains("no --yes"), "{out:?}");
    assert_eq!(prod.handle().stats().total_requests, 0);
    // With --yes it goes.
    let out = s.run(&args(&["run", f, "--yes", "--json"], &production(&prod)));
    let v = json_output(&out);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("Rehearsed: sandbox batch"), "{out:?}");
    assert!(out.stderr.contains("Confirmed by --yes"), "{out:?}");
    assert_eq!(v["summary"]["target"], "production");
    assert_paid_exactly_once(&prod.handle(), &rows);
}

#[test]
fn a_production_dry_run_whose_checks_pass_is_a_rehearsal_and_one_that_fails_is_not() {
    let s = Scratch::new();
    let rows = rows(4);
    let file = s.write("bonuses.csv", &csv_text(&rows));
    let f = file.to_str().unwrap();
    // Checks that fail (the assignments are unknown there) record nothing.
    let empty = knowing(&[]);
    let out = s.run(&args(
        &["run", f, "--dry-run", "--json"],
        &production(&empty),
    ));
    let v = json_output(&out);
    assert_eq!(v["preflight"]["passed"], false, "{out:?}");
    assert!(out.stderr.contains("nothing was journaled"), "{out:?}");
    let out = s.run(&args(&["run", f, "--yes"], &production(&empty)));
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("has not been rehearsed"), "{out:?}");
    assert_eq!(sends(&empty), 0);

    let prod = knowing(&rows);
    let out = s.run(&args(
        &["run", f, "--dry-run", "--json"],
        &production(&prod),
    ));
    let v = json_output(&out);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(v["preflight"]["passed"], true, "{out:?}");
    assert!(out.stderr.contains("The rehearsal is recorded"), "{out:?}");
    assert_eq!(sends(&prod), 0, "a dry run sends nothing");
    let out = s.run(&args(&["run", f, "--yes"], &production(&prod)));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("a production dry run passed its preflight"),
        "{out:?}"
    );
    assert_paid_exactly_once(&prod.handle(), &rows);
}

#[test]
fn an_edited_file_needs_its_own_rehearsal() {
    let s = Scratch::new();
    let rows = rows(5);
    let file = s.write("bonuses.csv", &csv_text(&rows));
    rehearse_in_sandbox(&s, file.to_str().unwrap(), &rows);
    let mut edited = rows.clone();
    edited[2].cents += 1;
    let other = s.write("bonuses-v2.csv", &csv_text(&edited));
    let prod = knowing(&edited);
    let out = s.run(&args(
        &["run", other.to_str().unwrap(), "--yes"],
        &production(&prod),
    ));
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("has not been rehearsed"), "{out:?}");
    assert_eq!(prod.handle().stats().total_requests, 0);
    // The same content under another name is the same rehearsal.
    let copy = s.write("copy.csv", &csv_text(&rows));
    let out = s.run(&args(
        &["run", copy.to_str().unwrap(), "--yes"],
        &production(&prod),
    ));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("Rehearsed: sandbox batch"), "{out:?}");
    assert_paid_exactly_once(&prod.handle(), &rows);
}

#[test]
fn skip_rehearsal_goes_and_is_recorded_with_the_batch() {
    let s = Scratch::new();
    let rows = rows(3);
    let file = s.write("bonuses.csv", &csv_text(&rows));
    let prod = knowing(&rows);
    let out = s.run(&args(
        &[
            "run",
            file.to_str().unwrap(),
            "--yes",
            "--skip-rehearsal",
            "--json",
        ],
        &production(&prod),
    ));
    let v = json_output(&out);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("NOT rehearsed (--skip-rehearsal)"),
        "{out:?}"
    );
    assert_paid_exactly_once(&prod.handle(), &rows);
    let batch = v["batch"].as_str().unwrap();
    let conn = rusqlite::Connection::open_with_flags(
        s.journal(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let options: String = conn
        .query_row(
            "SELECT options FROM batches WHERE name = ?1",
            [batch],
            |r| r.get(0),
        )
        .unwrap();
    let options: serde_json::Value = serde_json::from_str(&options).unwrap();
    assert_eq!(options["skip_rehearsal"], true, "{options}");
    json_output(&s.run(&["status", "--json"]));
}

// ---------------------------------------------------------------------------------------------
// Preflight: one clear line per finding
// ---------------------------------------------------------------------------------------------

#[test]
fn preflight_flags_unknown_assignments_other_workers_and_bonuses_paid_outside_payout() {
    let s = Scratch::new();
    let rows = rows(6);
    // Rows 0 and 1 are what they say; row 2's assignment does not exist; row 3's assignment
    // was done by someone else; row 4 was paid the same amount by hand already; row 5 is fine.
    let mut known: Vec<Row> = rows.iter().filter(|r| *r != &rows[2]).cloned().collect();
    known.iter_mut().find(|r| **r == rows[3]).unwrap().worker = "AOTHERWORKER99".into();
    // Unsigned, so that the payment made "elsewhere" may use the emulator's own keys.
    let prod = emulator(EmulatorConfig {
        known: Some(
            known
                .iter()
                .map(|r| KnownAssignment {
                    worker_id: r.worker.clone(),
                    assignment_id: r.assignment.clone(),
                    hit_id: "3HITPAYOUTTESTHIT00000000000000".into(),
                })
                .collect(),
        ),
        ..EmulatorConfig::default()
    });
    // Row 4 paid outside this journal (another payout, its own journal, same account).
    let elsewhere = Scratch::new();
    let one = elsewhere.write("one.csv", &csv_text(&rows[4..5]));
    let paid = elsewhere.run(&[
        "run",
        one.to_str().unwrap(),
        "--emulator",
        "--endpoint-url",
        &prod.url(),
    ]);
    assert_eq!(paid.code, 0, "{paid:?}");

    let file = s.write("bonuses.csv", &csv_text(&rows));
    let out = s.run(&args(
        &["run", file.to_str().unwrap(), "--dry-run", "--json"],
        &production(&prod),
    ));
    let v = json_output(&out);
    assert_eq!(v["preflight"]["passed"], false, "{out:?}");
    let problems: Vec<&str> = v["preflight"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    let lines: Vec<&str> = out.stderr.lines().map(str::trim).collect();
    let expect = [
        format!("line 4: assignment {} does not exist", rows[2].assignment),
        format!(
            "line 5: assignment {} was done by AOTHERWORKER99, not {}",
            rows[3].assignment, rows[3].worker
        ),
        format!(
            "line 6: assignment {} already has a bonus of ${}.{:02}",
            rows[4].assignment,
            rows[4].cents / 100,
            rows[4].cents % 100
        ),
    ];
    for e in &expect {
        assert_eq!(
            lines.iter().filter(|l| l.starts_with(e.as_str())).count(),
            1,
            "one line {e:?}: {out:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with(e.as_str())),
            "{problems:?}"
        );
    }
    assert_eq!(problems.len(), 3, "nothing else: {problems:?}");
    assert_eq!(sends(&prod), 1, "only the payment made elsewhere");
    // A failed dry run is no rehearsal.
    let out = s.run(&args(
        &["run", file.to_str().unwrap(), "--yes"],
        &production(&prod),
    ));
    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(sends(&prod), 1);
}

#[test]
fn ids_of_the_other_environment_are_one_line_not_one_per_row() {
    let s = Scratch::new();
    let rows = rows(40);
    let prod = knowing(&[]);
    let file = s.write("bonuses.csv", &csv_text(&rows));
    let out = s.run(&args(
        &["run", file.to_str().unwrap(), "--dry-run", "--json"],
        &production(&prod),
    ));
    let v = json_output(&out);
    assert_eq!(v["preflight"]["passed"], false);
    assert_eq!(
        v["preflight"]["problems"].as_array().unwrap().len(),
        1,
        "{:#}",
        v["preflight"]
    );
    assert_eq!(
        out.stderr
            .matches("40 of 40 IDs checked are unknown here: they probably belong to the other environment")
            .count(),
        1,
        "{out:?}"
    );
    assert!(!out.stderr.contains("does not exist"), "{out:?}");
    assert_eq!(sends(&prod), 0);
}

// ---------------------------------------------------------------------------------------------
// Caps
// ---------------------------------------------------------------------------------------------

#[test]
fn caps_refuse_before_any_call_naming_the_rows() {
    let s = Scratch::new();
    let mut rows = rows(4);
    rows[1].cents = 5000; // 50 typed for 0.50
    rows[3].cents = 2600;
    let file = s.write("bonuses.csv", &csv_text(&rows));
    let prod = knowing(&rows);
    let out = s.run(&args(
        &[
            "run",
            file.to_str().unwrap(),
            "--yes",
            "--skip-rehearsal",
            "--json",
        ],
        &production(&prod),
    ));
    let v = json_output(&out);
    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(v["error"]["kind"], "over_cap");
    assert_eq!(
        v["over_cap"],
        serde_json::json!(["line 3: $50.00", "line 5: $26.00"])
    );
    assert!(out.stderr.contains("above the cap of $25.00"), "{out:?}");
    assert!(out.stderr.contains("--max-bonus 50.00"), "{out:?}");
    assert_eq!(prod.handle().stats().total_requests, 0);

    // Within --max-bonus 60, but over --max-total.
    let out = s.run(&args(
        &[
            "run",
            file.to_str().unwrap(),
            "--yes",
            "--skip-rehearsal",
            "--max-bonus",
            "60",
            "--max-total",
            "10.00",
            "--json",
        ],
        &production(&prod),
    ));
    let v = json_output(&out);
    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(v["error"]["kind"], "over_cap");
    assert!(out.stderr.contains("above --max-total $10.00"), "{out:?}");
    assert_eq!(prod.handle().stats().total_requests, 0);
}

// ---------------------------------------------------------------------------------------------
// The confirmation prompt, at a real terminal
// ---------------------------------------------------------------------------------------------

/// A rehearsed production run started at a pty, waiting at its prompt.
fn at_the_prompt(s: &Scratch, rows: &[Row], prod: &BackgroundEmulator) -> (Pty, String) {
    let file = s.write("bonuses.csv", &csv_text(rows));
    let f = file.to_str().unwrap();
    rehearse_in_sandbox(s, f, rows);
    let mut pty = Pty::spawn(s.payout(&args(&["run", f], &production(prod))));
    let seen = pty.wait_for("to go on: ", Duration::from_secs(60));
    assert!(
        seen.contains("*** PRODUCTION: real money, real workers ***"),
        "{seen}"
    );
    assert!(seen.contains("rehearsed: sandbox batch"), "{seen}");
    (pty, seen)
}

#[test]
fn typing_yes_at_the_prompt_pays() {
    let s = Scratch::new();
    let rows = rows(5);
    let prod = knowing(&rows);
    let (mut pty, _) = at_the_prompt(&s, &rows, &prod);
    assert_eq!(sends(&prod), 0, "nothing before the answer");
    pty.type_line("yes");
    let (code, seen) = pty.finish(Duration::from_secs(60));
    assert_eq!(code, 0, "{seen}");
    assert_paid_exactly_once(&prod.handle(), &rows);
}

#[test]
fn typing_no_at_the_prompt_sends_nothing() {
    let s = Scratch::new();
    let rows = rows(5);
    let prod = knowing(&rows);
    let (mut pty, _) = at_the_prompt(&s, &rows, &prod);
    pty.type_line("no");
    let (code, seen) = pty.finish(Duration::from_secs(60));
    assert_eq!(code, 6, "{seen}");
    assert!(seen.contains("not confirmed; nothing was sent"), "{seen}");
    assert_eq!(sends(&prod), 0);
    assert!(prod.handle().ledger().is_empty());
}

#[test]
fn typing_the_grand_total_at_the_prompt_pays() {
    let s = Scratch::new();
    let rows = rows(5);
    let prod = knowing(&rows);
    let (mut pty, seen) = at_the_prompt(&s, &rows, &prod);
    let total = seen
        .split("the grand total, ")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .unwrap_or_else(|| panic!("no grand total in the prompt: {seen}"))
        .to_owned();
    assert!(total.starts_with('$'), "{total}");
    pty.type_line(&total);
    let (code, seen) = pty.finish(Duration::from_secs(60));
    assert_eq!(code, 0, "{seen}");
    assert_paid_exactly_once(&prod.handle(), &rows);
}
