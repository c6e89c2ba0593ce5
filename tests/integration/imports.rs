//! A run killed while it imports its file: `status` and `resume` say the import was cut short
//! and what to do, never that the batch has nothing open; `status` during the import says so.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::support::*;

/// `n` one-cent bonus rows: a file that takes a while to import and stays within the
/// emulator's balance.
pub fn cent_rows(n: usize) -> Vec<Row> {
    rows(n).into_iter().map(|r| Row { cents: 1, ..r }).collect()
}

/// Lines of a spawned payout's stderr, read on a thread as they come.
pub fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let err = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line of `lines` containing `text` (at most a minute); returns it.
pub fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if l.contains(text) => return l,
            Ok(_) => {}
            Err(e) => panic!("no line with {text:?}: {e}"),
        }
    }
}

/// Asks `payout status` until it says `payout` (still running) is importing; fails if the run
/// ends first or two minutes pass. Returns the last status seen.
pub fn wait_until_importing(s: &Scratch, child: &mut Child) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let st = s.run(&["status"]);
        if st.stdout.contains("importing") {
            return st;
        }
        assert!(
            child.try_wait().expect("poll payout").is_none(),
            "payout ended before its import was seen: {st:?}"
        );
        assert!(Instant::now() < deadline, "no import seen: {st:?}");
        // A poll interval, not a synchronisation: the condition is checked again.
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_run_killed_while_importing_is_reported_as_interrupted_never_as_a_finished_batch() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    // An earlier batch, finished: what `status` showed as the latest one before.
    let small = s.write("small.csv", &csv_text(&cent_rows(3)[..]));
    let out = s.run(&args(&["run", small.to_str().unwrap()], &target_args(&emu)));
    assert_eq!(out.code, 0, "{out:?}");
    let small_name = out
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("New batch "))
        .and_then(|l| l.strip_suffix('.'))
        .expect("the batch named")
        .to_owned();
    let big = s.write("big.csv", &csv_text(&cent_rows(60_003)[3..]));
    let cmd = target_args(&emu);
    let mut child = s.spawn(&args(&["run", big.to_str().unwrap()], &cmd));
    // Validated and connected: the import comes next.
    let lines = stderr_lines(&mut child);
    wait_for_line(&lines, "Credentials:");
    let during = wait_until_importing(&s, &mut child);
    assert_eq!(during.code, 0, "{during:?}");
    assert!(during.stdout.contains("big.csv"), "{during:?}");
    let json = s.run(&["status", "--json"]);
    let v = json_output(&json);
    if v["importing"] == true {
        assert_eq!(v["source"], big.to_str().unwrap());
    }
    child.kill().expect("SIGKILL payout");
    child.wait().expect("reap payout");
    let paid_before = emu.handle().stats().payments;

    let st = s.run(&["status"]);
    assert_eq!(st.code, 4, "{st:?}");
    assert!(
        st.stderr.contains("interrupted while importing") && st.stderr.contains("big.csv"),
        "{st:?}"
    );
    assert!(!st.stdout.contains("pending"), "shown as a batch: {st:?}");
    let v = json_output(&s.run(&["status", "--json"]));
    assert_eq!(v["error"]["kind"], "interrupted");
    // Twice: saying it does not make it go away.
    for _ in 0..2 {
        let r = s.run(&["resume"]);
        assert_eq!(r.code, 4, "{r:?}");
        assert!(
            r.stderr.contains(&format!(
                "the last run was interrupted while importing {}",
                big.display()
            )) && r.stderr.contains("Run the same command again"),
            "{r:?}"
        );
    }
    // A batch named is resumed as asked; the interrupted import is said and removed.
    let r = s.run(&["resume", &small_name]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("interrupted while importing"), "{r:?}");
    let r = s.run(&["resume"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(emu.handle().stats().payments, paid_before, "nothing sent");
}

#[test]
fn status_of_the_latest_batch_names_an_older_one_left_unfinished() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let all = cent_rows(40);
    let older = s.write("older.csv", &csv_text(&all[..30]));
    let cmd = target_args(&emu);
    run_and_kill_at(
        &s,
        &emu,
        &args(&["run", older.to_str().unwrap()], &cmd),
        KillAt::Payments(3),
    );
    let newer = s.write("newer.csv", &csv_text(&all[30..]));
    let out = s.run(&args(&["run", newer.to_str().unwrap()], &cmd));
    assert_eq!(out.code, 0, "{out:?}");
    let st = s.run(&["status"]);
    assert_eq!(st.code, 0, "{st:?}");
    assert!(st.stdout.contains("newer.csv"), "{st:?}");
    assert!(
        st.stdout.contains("Unfinished work") && st.stdout.contains("older.csv"),
        "the older batch's open work is not mentioned: {st:?}"
    );
    let v = json_output(&s.run(&["status", "--json"]));
    let unfinished = v["unfinished"].as_array().expect("unfinished listed");
    assert_eq!(unfinished.len(), 1, "{v}");
    assert_eq!(unfinished[0]["source"], older.to_str().unwrap());
    assert!(unfinished[0]["pending"].as_u64().unwrap() > 0);
}
