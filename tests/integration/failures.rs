//! Every failure clear and bounded: endpoints that hang or refuse, output that cannot be
//! written, exit statuses and `--json` that tell the truth on every path.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use payout::emulator::EmulatorConfig;
use payout::money::Cents;

use crate::support::*;

/// Waits for `child` at most `limit`; kills it and fails if it takes longer.
fn wait_bounded(mut child: std::process::Child, limit: Duration) -> Outcome {
    let start = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            return child.wait_with_output().unwrap().into();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out: Outcome = child.wait_with_output().unwrap().into();
            panic!("payout did not end within {limit:?}: {out:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback listener that accepts connections and never answers (held open by the thread).
fn silent_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            match conn {
                Ok(c) => held.push(c),
                Err(_) => return,
            }
        }
    });
    url
}

/// A loopback port nobody listens on.
fn closed_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[test]
fn an_endpoint_that_never_answers_ends_in_bounded_time_with_the_cause_and_records_nothing() {
    let s = Scratch::new();
    let url = silent_endpoint();
    let file = s.write("b.csv", &csv_text(&rows(3)));
    let child = s
        .payout(&[
            "run",
            file.to_str().unwrap(),
            "--endpoint-url",
            &url,
            "--testing-endpoint",
            "--call-timeout-ms",
            "1000",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("did not answer"), "the cause: {out:?}");
    assert!(
        out.stderr.contains("no answer within 1 s"),
        "the timeout is shown: {out:?}"
    );
    assert!(
        out.stderr.contains("trying again in"),
        "said while waiting: {out:?}"
    );
    assert!(out.stderr.contains("Nothing was recorded"), "{out:?}");
    let v = json_output(&out);
    assert_eq!(v["error"]["kind"], "unreachable");
    let status = s.run(&["status"]);
    assert!(
        status.stderr.contains("no batch yet"),
        "no batch recorded: {status:?}"
    );
}

#[test]
fn a_refused_connection_ends_in_bounded_time_with_the_cause() {
    let s = Scratch::new();
    let file = s.write("b.csv", &csv_text(&rows(3)));
    let child = s
        .payout(&[
            "run",
            file.to_str().unwrap(),
            "--emulator",
            "--endpoint-url",
            &closed_endpoint(),
            "--call-timeout-ms",
            "1000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("could not connect"), "{out:?}");
    assert!(
        out.stderr.contains("Check the endpoint URL"),
        "the fix: {out:?}"
    );
}

#[test]
fn ctrl_c_during_the_account_check_says_so_and_exits_incomplete() {
    let s = Scratch::new();
    let url = silent_endpoint();
    let file = s.write("b.csv", &csv_text(&rows(3)));
    let mut child = s
        .payout(&[
            "run",
            file.to_str().unwrap(),
            "--endpoint-url",
            &url,
            "--testing-endpoint",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("payout ·") {
        assert_ne!(stderr.read_line(&mut seen).unwrap(), 0, "{seen}");
    }
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    stderr.read_to_string(&mut seen).unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let out = Outcome {
        code: child.wait().unwrap().code().unwrap_or(-1),
        stdout,
        stderr: seen,
    };
    assert_eq!(out.code, 4, "{out:?}");
    assert!(
        out.stderr.contains("stopped on request before anything"),
        "{out:?}"
    );
    assert_eq!(json_output(&out)["error"]["kind"], "interrupted");
}

#[test]
fn a_full_disk_on_stdout_is_an_error_message_not_a_panic_and_the_journal_is_right() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let file = s.write("b.csv", &csv_text(&rows(5)));
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let mut run = s.payout(&args(
        &["run", file.to_str().unwrap(), "--json"],
        &target_args(&emu),
    ));
    run.stdout(full());
    let out: Outcome = run.output().unwrap().into();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("failed to write"), "{out:?}");
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    assert_paid_exactly_once(&emu.handle(), &rows(5));
    let mut status = s.payout(&["status"]);
    status.stdout(full());
    let out: Outcome = status.output().unwrap().into();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("failed to write"), "{out:?}");
    let mut report = s.payout(&["report"]);
    report.stdout(full());
    let out: Outcome = report.output().unwrap().into();
    assert_eq!(out.code, 1, "{out:?}");
    let v = json_output(&s.run(&["status", "--json"]));
    assert_eq!(v["paid"], 5, "the journal holds what was paid");
}

#[test]
fn a_closed_pipe_ends_the_report_quietly() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let file = s.write("b.csv", &csv_text(&rows(1000)));
    let out = s.run(&args(
        &[
            "run",
            file.to_str().unwrap(),
            "--rate",
            "5000",
            "--concurrency",
            "16",
        ],
        &target_args(&emu),
    ));
    assert_eq!(out.code, 0, "{out:?}");
    let mut child = s
        .payout(&["report"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader (like `head -1`) is gone now.
    let out: Outcome = child.wait_with_output().unwrap().into();
    assert!(first.starts_with("line,"), "{first}");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.is_empty(), "quiet: {out:?}");
}

#[test]
fn with_json_every_exit_writes_one_object_matching_the_schema() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let t = target_args(&emu);
    let file = s.write("b.csv", &csv_text(&rows(3)));
    let f = file.to_str().unwrap();
    // A dry run carries the plan.
    let dry = s.run(&args(&["run", f, "--dry-run", "--json"], &t));
    let v = json_output(&dry);
    assert_eq!(v["plan"]["bonuses"], 3);
    assert!(v["error"].is_null());
    // Credentials refused before anything is recorded.
    let mut bad = s.payout(&args(&["run", f, "--json"], &t));
    bad.env("AWS_SECRET_ACCESS_KEY", "wrong");
    let v = json_output(&bad.output().unwrap().into());
    assert_eq!(v["error"]["kind"], "credentials");
    assert!(v["error"]["fix"].as_str().unwrap().contains("access key"));
    // A file that is not a journal.
    let other = s.write("not-a-journal.sqlite", "hello, this is not SQLite at all");
    let mut j = s.payout(&args(&["run", f, "--json"], &t));
    j.env("PAYOUT_JOURNAL", &other);
    let out: Outcome = j.output().unwrap().into();
    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(json_output(&out)["error"]["kind"], "not_a_journal");
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "hello, this is not SQLite at all"
    );
    // Usage errors too.
    let v = json_output(&s.run(&["run", f, "--json", "--no-such-flag"]));
    assert_eq!(v["error"]["kind"], "usage");
    // Invalid input, a run, status.
    let bad_csv = s.write(
        "bad.csv",
        "WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,$1,r\n",
    );
    let v = json_output(&s.run(&args(&["run", bad_csv.to_str().unwrap(), "--json"], &t)));
    assert_eq!(v["error"]["kind"], "invalid_input");
    assert_eq!(v["problems"][0]["line"], 2);
    let v = json_output(&s.run(&args(&["run", f, "--json"], &t)));
    assert_eq!(v["summary"]["paid"], 3);
    let v = json_output(&s.run(&["status", "--json"]));
    assert_eq!(v["paid"], 3);
    let v = json_output(&s.run(&["status", "no-such-batch", "--json"]));
    assert_eq!(v["error"]["kind"], "no_such_batch");
}

/// One scenario per documented exit status, each checked against the README's table.
#[test]
fn every_documented_exit_status_is_produced_and_matches_the_readme() {
    let readme =
        std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let s = Scratch::new();
    let good = s.write("good.csv", &csv_text(&rows(4)));
    let g = good.to_str().unwrap();
    let mut produced = Vec::new();
    let mut check = |code: i32, out: Outcome| {
        assert_eq!(out.code, code, "{out:?}");
        // Exit 1 below is stdout itself failing: no JSON can reach it.
        if code != 1 {
            json_output(&out);
        }
        assert!(
            readme.contains(&format!("| {code} | ")),
            "README has no row for {code}"
        );
        produced.push(code);
    };
    // 0: done.
    let ok_emu = emulator(signed_config());
    check(
        0,
        s.run(&args(&["run", g, "--json"], &target_args(&ok_emu))),
    );
    // 1: payout itself failed (stdout unwritable).
    let mut full = s.payout(&["status", "--json"]);
    full.stdout(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap(),
    );
    check(1, full.output().unwrap().into());
    // 2: usage.
    check(2, s.run(&["run", g, "--json", "--rate", "fast"]));
    // 3: some operations refused.
    let known = emulator(EmulatorConfig {
        known: Some(vec![payout::emulator::KnownAssignment {
            worker_id: rows(1)[0].worker.clone(),
            assignment_id: rows(1)[0].assignment.clone(),
            hit_id: "3HIT00000000000000000000000000".into(),
        }]),
        ..signed_config()
    });
    let s3 = Scratch::new();
    let two = s3.write("two.csv", &csv_text(&rows(2)));
    check(
        3,
        s3.run(&args(
            &["run", two.to_str().unwrap(), "--json"],
            &target_args(&known),
        )),
    );
    // 4: incomplete (funds ran out).
    let poor = emulator(EmulatorConfig {
        spend_limit: Some(Cents(1)),
        ..signed_config()
    });
    let s4 = Scratch::new();
    let f4 = s4.write("b.csv", &csv_text(&rows(2)));
    check(
        4,
        s4.run(&args(
            &["run", f4.to_str().unwrap(), "--json"],
            &target_args(&poor),
        )),
    );
    // 5: invalid input.
    let bad = s.write("bad.csv", "WorkerId\nnot-a-worker\n");
    check(
        5,
        s.run(&["run", bad.to_str().unwrap(), "--emulator", "--json"]),
    );
    // 6: refused to start.
    check(6, s.run(&["run", g, "--production", "--json"]));
    produced.sort();
    assert_eq!(produced, vec![0, 1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_dry_run_of_a_half_done_batch_plans_what_is_left_and_says_what_was_done() {
    let s = Scratch::new();
    let rows = rows(10);
    let limit: u64 = rows
        .iter()
        .take(4)
        .map(|r| r.cents + payout::platform::bonus_fee(Cents(r.cents)).0)
        .sum();
    let emu = emulator(EmulatorConfig {
        spend_limit: Some(Cents(limit)),
        ..signed_config()
    });
    let file = s.write("b.csv", &csv_text(&rows));
    let t = target_args(&emu);
    let cmd = args(&["run", file.to_str().unwrap(), "--concurrency", "1"], &t);
    assert_eq!(s.run(&cmd).code, 4);
    let mut dry = cmd.clone();
    dry.extend(["--dry-run", "--json"]);
    let out = s.run(&dry);
    assert_eq!(out.code, 0, "{out:?}");
    let v = json_output(&out);
    assert_eq!(v["plan"]["bonuses"], 6, "only what is left");
    let left: u64 = rows[4..].iter().map(|r| r.cents).sum();
    assert_eq!(v["plan"]["bonus_cents"], left);
    assert!(out.stderr.contains("4 operations done before"), "{out:?}");
    assert_eq!(
        emu.handle().stats().calls.get("SendBonus").copied(),
        Some(5)
    );
}

/// `status` and `report` read a journal on a read-only filesystem: a read-only bind mount in a
/// private mount namespace (`unshare -rm`), so that nothing outside the test sees it.
#[test]
fn status_and_report_read_a_journal_on_a_read_only_filesystem() {
    let s = Scratch::new();
    let (_emu, _file) = paid_batch(&s, 3);
    let dir = s.dir.path().display().to_string();
    let bin = env!("CARGO_BIN_EXE_payout");
    let script = format!(
        "mount --bind {dir} {dir} && mount -o remount,bind,ro {dir} && \
         if touch {dir}/probe 2>/dev/null; then echo WRITABLE; exit 9; fi && \
         {bin} status --json && {bin} report --format json"
    );
    let env = s.payout(&[]);
    let out: Outcome = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", &script])
        .env_clear()
        .envs(env.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .output()
        .unwrap()
        .into();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("\"paid\": 3"), "{out:?}");
    assert!(out.stdout.contains("\"outcome\":\"paid\""), "{out:?}");
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    use crate::production::Pty;
    let s = Scratch::new();
    let (_emu, _file) = paid_batch(&s, 2);
    let status = |color: bool| {
        let mut pty = Pty::spawn_colored(s.payout(&["status"]), color);
        pty.wait_for("SANDBOX", Duration::from_secs(30));
        pty.finish(Duration::from_secs(30)).1
    };
    assert!(
        status(true).contains("\x1b[1mSANDBOX"),
        "coloured on a terminal"
    );
    assert!(!status(false).contains('\x1b'), "NO_COLOR is honoured");
    // Not a terminal: never.
    assert!(!s.run(&["status"]).stdout.contains('\x1b'));
}

#[test]
fn a_readable_journal_is_made_private_and_an_endpoints_password_is_never_kept() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig::default());
    let file = s.write("b.csv", &csv_text(&rows(2)));
    let with_password = emu.url().replace("http://", "http://someone:hunter2pw@");
    let out = s.run(&[
        "run",
        file.to_str().unwrap(),
        "--emulator",
        "--endpoint-url",
        &with_password,
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("hunter2pw"), "{out:?}");
    let bytes = journal_bytes(&s.journal());
    assert!(
        !bytes.windows(9).any(|w| w == b"hunter2pw"),
        "the password is in the journal"
    );
    let status = s.run(&["status", "--json"]);
    assert!(!status.stdout.contains("hunter2pw"));
    std::fs::set_permissions(s.journal(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let again = s.run(&[
        "run",
        file.to_str().unwrap(),
        "--emulator",
        "--endpoint-url",
        &emu.url(),
    ]);
    assert!(again.stderr.contains("made it private"), "{again:?}");
    let mode = std::fs::metadata(s.journal()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
