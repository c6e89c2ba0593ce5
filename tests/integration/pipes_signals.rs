//! Inputs that cannot be read twice (a FIFO, `/dev/fd/N`) are read once into a private spool;
//! SIGTERM and Ctrl-C end the synchronous passes (validation, import) promptly and cleanly.

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::imports::{cent_rows, stderr_lines, wait_for_line, wait_until_importing};
use crate::support::*;

/// No spool file is left where payout keeps its journal.
fn assert_no_spool_left(s: &Scratch) {
    let left: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("spool"))
        .collect();
    assert!(left.is_empty(), "spool files left: {left:?}");
}

#[test]
fn a_fifo_is_read_once_into_a_spool_and_the_batch_is_paid() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let fifo = s.path("b.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let rows = rows(12);
    let text = csv_text(&rows);
    let writer = {
        let fifo = fifo.clone();
        // Opening a FIFO to write waits for its reader: payout's first pass.
        std::thread::spawn(move || std::fs::write(fifo, text).unwrap())
    };
    let mut child = s.spawn(&args(&["run", fifo.to_str().unwrap()], &target_args(&emu)));
    // A second open of the FIFO would wait for a writer that is gone: bounded, to fail rather
    // than hang.
    let out = wait_bounded(child_output(&mut child), &mut child);
    writer.join().unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    assert_paid_exactly_once(&emu.handle(), &rows);
    assert_no_spool_left(&s);
}

#[test]
fn a_pipe_given_as_dev_fd_is_read_once_and_the_batch_is_paid() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let rows = rows(9);
    let mut child = s
        .payout(&args(&["run", "/dev/fd/0"], &target_args(&emu)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text = csv_text(&rows);
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()).unwrap());
    let out = Outcome::from(child.wait_with_output().unwrap());
    writer.join().unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        !out.stderr.contains("changed while payout read it"),
        "{out:?}"
    );
    assert_paid_exactly_once(&emu.handle(), &rows);
    assert_no_spool_left(&s);
}

/// Reads a child's stdout and stderr on threads, so that its pipes never fill; both are sent
/// once the child has closed them (it ended).
fn child_output(child: &mut Child) -> std::sync::mpsc::Receiver<(String, String)> {
    use std::io::Read;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let e = std::thread::spawn(move || {
            let mut t = String::new();
            let _ = err.read_to_string(&mut t);
            t
        });
        let mut o = String::new();
        let _ = out.read_to_string(&mut o);
        let _ = tx.send((o, e.join().unwrap()));
    });
    rx
}

/// Waits for `child` to close its output and end (killing it and failing after a minute: a
/// guard against a hang, not a measure of speed).
fn wait_bounded(output: std::sync::mpsc::Receiver<(String, String)>, child: &mut Child) -> Outcome {
    match output.recv_timeout(Duration::from_secs(60)) {
        Ok((stdout, stderr)) => Outcome {
            code: child.wait().unwrap().code().unwrap_or(-1),
            stdout,
            stderr,
        },
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let (o, e) = output.recv().unwrap_or_default();
            panic!("payout hung on its input\n--- stdout\n{o}\n--- stderr\n{e}");
        }
    }
}

/// Sends `signal` to `child`, then reads the rest of its stderr (it ends when the process
/// does) and its exit status. Two minutes without the end fail the test: a hang guard.
fn signal_and_wait(
    child: &mut Child,
    lines: &std::sync::mpsc::Receiver<String>,
    signal: libc::c_int,
) -> (i32, String) {
    // SAFETY: the pid is our own child's, not yet reaped.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut rest = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => rest.push(line),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("payout did not end after the signal: {}", rest.join("\n"));
            }
        }
    }
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (code, rest.join("\n"))
}

#[test]
fn sigterm_and_ctrl_c_during_validation_end_it_before_the_journal_is_touched() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let s = Scratch::new();
        let emu = emulator(signed_config());
        let big = s.write("big.csv", &csv_text(&cent_rows(200_000)));
        let mut child = s.spawn(&args(&["run", big.to_str().unwrap()], &target_args(&emu)));
        let lines = stderr_lines(&mut child);
        wait_for_line(&lines, "Checking");
        let (code, err) = signal_and_wait(&mut child, &lines, signal);
        assert_eq!(code, 4, "signal {signal}: {err}");
        assert!(err.contains("stopped on request"), "signal {signal}: {err}");
        // Stopped in the validation: the journal was never opened, nothing sent.
        assert!(
            !s.journal().exists(),
            "signal {signal}: the run went on: {err}"
        );
        assert_eq!(emu.handle().stats().total_requests, 0);
    }
}

#[test]
fn sigterm_and_ctrl_c_during_the_import_leave_the_journal_as_it_was() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let s = Scratch::new();
        let emu = emulator(signed_config());
        let big = s.write("big.csv", &csv_text(&cent_rows(60_000)));
        let mut child = s.spawn(&args(&["run", big.to_str().unwrap()], &target_args(&emu)));
        let lines = stderr_lines(&mut child);
        wait_for_line(&lines, "Credentials:");
        wait_until_importing(&s, &mut child);
        let (code, err) = signal_and_wait(&mut child, &lines, signal);
        assert_eq!(code, 4, "signal {signal}: {err}");
        assert!(
            err.contains("stopped on request while importing"),
            "signal {signal}: {err}"
        );
        assert_eq!(emu.handle().stats().payments, 0, "signal {signal}");
        // No batch, and no import left behind to report.
        let st = s.run(&["status"]);
        assert!(
            st.stderr.contains("no batch yet"),
            "signal {signal}: {st:?}"
        );
        let r = s.run(&["resume"]);
        assert_eq!(r.code, 0, "signal {signal}: {r:?}");
        assert!(r.stderr.contains("Nothing to resume"), "{r:?}");
    }
}
