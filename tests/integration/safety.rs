//! The exactly-once holes a tester found, closed: endpoints that would move a batch to another
//! ledger, reports written over the journal, journals lost or locked by another path, and an
//! edited file after an interruption.

use std::collections::BTreeMap;
use std::time::Duration;

use payout::emulator::{BackgroundEmulator, EmulatorConfig, EmulatorHandle};
use payout::money::Cents;

use crate::support::*;

/// Payments per assignment in the emulator's ledger.
fn per_assignment(h: &EmulatorHandle) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for p in h.ledger() {
        *m.entry(p.assignment_id).or_insert(0) += 1;
    }
    m
}

fn assert_no_assignment_paid_twice(h: &EmulatorHandle) {
    let twice: Vec<_> = per_assignment(h)
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect();
    assert!(twice.is_empty(), "paid twice: {twice:?}");
}

fn cost(r: &Row) -> u64 {
    r.cents + payout::platform::bonus_fee(Cents(r.cents)).0
}

/// A batch of `rows` interrupted by a spend limit after the first `paid` rows' worth.
fn interrupted(s: &Scratch, rows: &[Row], paid: usize, file: &str) -> (EmulatorGuard, Vec<String>) {
    let limit: u64 = rows.iter().take(paid).map(cost).sum();
    let emu = emulator(EmulatorConfig {
        spend_limit: Some(Cents(limit)),
        ..signed_config()
    });
    let path = s.write(file, &csv_text(rows));
    let cmd: Vec<String> = ["run", path.to_str().unwrap(), "--concurrency", "1"]
        .iter()
        .map(|s| s.to_string())
        .chain(target_args(&emu))
        .collect();
    let out = s.run(&cmd.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.code, 4, "interrupted: {out:?}");
    assert_eq!(emu.handle().ledger().len(), paid);
    emu.handle().set_spend_limit(None);
    (EmulatorGuard(emu), cmd)
}

/// Keeps the emulator alive for the test.
struct EmulatorGuard(payout::emulator::BackgroundEmulator);

#[test]
fn resume_through_another_endpoint_is_refused_by_flag_or_environment_with_zero_calls() {
    let s = Scratch::new();
    let rows = rows(6);
    let (a, _) = interrupted(&s, &rows, 2, "b.csv");
    let b = emulator(signed_config());
    let flag = s.run(&[
        "resume",
        "--sandbox",
        "--endpoint-url",
        &b.url(),
        "--testing-endpoint",
    ]);
    assert_eq!(flag.code, 6, "{flag:?}");
    assert!(
        flag.stderr.contains(&a.0.url()),
        "names where it works: {flag:?}"
    );
    let mut env = s.payout(&["resume"]);
    env.env("PAYOUT_ENDPOINT_URL", b.url());
    let env: Outcome = env.output().unwrap().into();
    assert_eq!(env.code, 6, "{env:?}");
    assert!(env.stderr.contains("PAYOUT_ENDPOINT_URL"), "{env:?}");
    assert_eq!(
        b.handle().stats().total_requests,
        0,
        "the other endpoint heard nothing"
    );
    // Where it was recorded, it resumes.
    let ok = s.run(&["resume", "--backoff-ms", "2"]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert_paid_exactly_once(&a.0.handle(), &rows);
}

#[test]
fn an_endpoint_in_place_of_mturk_needs_the_testing_flag_and_the_banner_shows_it() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let file = s.write("b.csv", &csv_text(&rows(2)));
    let f = file.to_str().unwrap();
    let url = emu.url();
    for cmd in [
        vec!["run", f, "--endpoint-url", &url],
        vec!["run", f, "--sandbox", "--endpoint-url", &url],
        vec!["run", f, "--production", "--yes", "--endpoint-url", &url],
        vec![
            "run",
            f,
            "--dry-run",
            "--production",
            "--endpoint-url",
            &url,
        ],
    ] {
        let out = s.run(&cmd);
        assert_eq!(out.code, 6, "{cmd:?}: {out:?}");
        assert!(out.stderr.contains("--testing-endpoint"), "{out:?}");
    }
    let mut env = s.payout(&["run", f, "--sandbox"]);
    env.env("PAYOUT_ENDPOINT_URL", &url);
    let env: Outcome = env.output().unwrap().into();
    assert_eq!(env.code, 6, "{env:?}");
    assert!(env.stderr.contains("PAYOUT_ENDPOINT_URL"), "{env:?}");
    assert_eq!(emu.handle().stats().total_requests, 0);
    let ok = s.run(&args(&["run", f], &target_args(&emu)));
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(
        ok.stderr.contains("testing endpoint, not MTurk"),
        "the banner says so: {ok:?}"
    );
}

#[test]
fn a_malformed_endpoint_url_is_a_usage_error_before_anything_else() {
    let s = Scratch::new();
    let file = s.write("b.csv", &csv_text(&rows(2)));
    let out = s.run(&[
        "run",
        file.to_str().unwrap(),
        "--emulator",
        "--endpoint-url",
        "not a url",
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    let mut env = s.payout(&["run", file.to_str().unwrap(), "--emulator"]);
    env.env("PAYOUT_ENDPOINT_URL", "127.0.0.1:9");
    let env: Outcome = env.output().unwrap().into();
    assert_eq!(env.code, 2, "{env:?}");
    assert!(!s.journal().exists());
}

#[test]
fn a_report_never_lands_on_the_journal_its_files_or_the_input_and_never_replaces_a_file() {
    let s = Scratch::new();
    let (_emu, file) = paid_batch(&s, 3);
    let journal_before = std::fs::read(s.journal()).unwrap();
    let csv_before = std::fs::read(&file).unwrap();
    let link = s.path("link.sqlite");
    std::os::unix::fs::symlink(s.journal(), &link).unwrap();
    let wal = format!("{}-wal", s.journal().display());
    for target in [
        s.journal().to_str().unwrap().to_owned(),
        wal,
        link.to_str().unwrap().to_owned(),
        file.to_str().unwrap().to_owned(),
    ] {
        for force in [false, true] {
            let mut cmd = vec!["report", "-o", target.as_str()];
            if force {
                cmd.push("--force");
            }
            let out = s.run(&cmd);
            assert_eq!(out.code, 6, "{target}: {out:?}");
            assert!(out.stderr.contains("refusing"), "{out:?}");
        }
    }
    assert!(
        std::fs::read(s.journal()).unwrap() == journal_before,
        "the journal file changed"
    );
    assert!(
        std::fs::read(&file).unwrap() == csv_before,
        "the CSV changed"
    );
    let existing = s.write("old-report.csv", "keep me");
    let out = s.run(&["report", "-o", existing.to_str().unwrap()]);
    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
    let out = s.run(&["report", "-o", existing.to_str().unwrap(), "--force"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        std::fs::read_to_string(&existing)
            .unwrap()
            .starts_with("line,")
    );
    // The journal still works.
    let status = s.run(&["status", "--json"]);
    assert_eq!(status.code, 0, "{status:?}");
}

#[test]
fn a_journal_deleted_while_a_run_goes_on_stops_it_with_a_clear_error() {
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig {
        latency: Duration::from_millis(20),
        ..signed_config()
    });
    let file = s.write("b.csv", &csv_text(&rows(200)));
    let t = target_args(&emu);
    let child = s.spawn(&args(
        &[
            "run",
            file.to_str().unwrap(),
            "--concurrency",
            "2",
            "--rate",
            "1000",
        ],
        &t,
    ));
    assert!(
        emu.handle()
            .wait_for(Duration::from_secs(30), |st| st.payments >= 5)
    );
    std::fs::remove_file(s.journal()).unwrap();
    let out: Outcome = child.wait_with_output().unwrap().into();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("deleted or replaced"), "{out:?}");
    assert!(
        emu.handle().ledger().len() < 200,
        "it stopped instead of going on"
    );
}

#[test]
fn a_second_payout_through_a_symlink_or_a_hard_link_to_the_journal_is_refused() {
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
    assert!(
        emu.handle()
            .wait_for(Duration::from_secs(30), |st| st.payments >= 2)
    );
    let sym = s.path("sym.sqlite");
    std::os::unix::fs::symlink(s.journal(), &sym).unwrap();
    let hard = s.path("hard.sqlite");
    std::fs::hard_link(s.journal(), &hard).unwrap();
    // Removing what used to be the lock file changes nothing: the lock is on the journal.
    let _ = std::fs::remove_file(format!("{}.lock", s.journal().display()));
    for other in [&sym, &hard] {
        let mut c = s.payout(&cmd);
        c.env("PAYOUT_JOURNAL", other);
        let out: Outcome = c.output().unwrap().into();
        assert_eq!(out.code, 6, "{other:?}: {out:?}");
        assert!(out.stderr.contains("another payout is running"), "{out:?}");
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let last = s.run(&cmd);
    assert_eq!(last.code, 0, "{last:?}");
    assert_paid_exactly_once(&emu.handle(), &rows(200));
}

#[test]
fn an_edited_file_after_an_interruption_is_shown_and_nothing_is_paid_twice_whatever_comes_next() {
    let s = Scratch::new();
    let original = rows(12);
    let (emu, v1) = interrupted(&s, &original, 5, "bonuses.csv");
    let h = emu.0.handle();
    // The researcher edits an amount already paid (line 3) and one not yet paid (line 10).
    let mut edited = original.clone();
    edited[1].cents += 50;
    edited[8].cents += 50;
    let v2_path = s.write("bonuses-v2.csv", &csv_text(&edited));
    let t = target_args(&emu.0);
    let v2 = args(&["run", v2_path.to_str().unwrap()], &t);
    let refused = s.run(&v2);
    assert_eq!(refused.code, 6, "{refused:?}");
    for want in [
        "line 3",
        "line 10",
        "bonuses-",
        "unfinished",
        "already paid",
        "$",
    ] {
        assert!(
            refused.stderr.contains(want),
            "missing {want:?}: {refused:?}"
        );
    }
    assert_eq!(h.ledger().len(), 5, "nothing was sent");
    // --supersede alone does not pay an assignment twice: line 3 was paid.
    let mut sup = v2.clone();
    sup.push("--supersede");
    assert_eq!(s.run(&sup).code, 6);
    assert_eq!(h.ledger().len(), 5);
    assert_no_assignment_paid_twice(&h);
    // Finishing the old batch pays its old amounts, once.
    let resumed = s.run(&["resume", "--backoff-ms", "2"]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert_paid_exactly_once(&h, &original);
    // Every later command pays nothing more.
    let v1: Vec<&str> = v1.iter().map(String::as_str).collect();
    for cmd in [v2.clone(), sup, v1] {
        let out = s.run(&cmd);
        assert_ne!(out.code, 3, "{out:?}");
    }
    assert_eq!(s.run(&["resume"]).code, 0);
    assert_paid_exactly_once(&h, &original);
    assert_no_assignment_paid_twice(&h);
}

#[test]
fn supersede_verifies_and_closes_the_old_batch_and_the_new_amounts_are_paid_once() {
    let s = Scratch::new();
    let original = rows(12);
    let (emu, _) = interrupted(&s, &original, 5, "bonuses.csv");
    let h = emu.0.handle();
    // Only rows not paid yet are corrected.
    let mut edited = original.clone();
    edited[8].cents += 50;
    edited[10].reason = "corrected reason".into();
    let v2_path = s.write("bonuses-v2.csv", &csv_text(&edited));
    let t = target_args(&emu.0);
    let v2 = args(&["run", v2_path.to_str().unwrap()], &t);
    assert_eq!(s.run(&v2).code, 6);
    let mut sup = v2.clone();
    sup.push("--supersede");
    let out = s.run(&sup);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("superseded"), "{out:?}");
    assert_paid_exactly_once(&h, &edited);
    // The old batch is never resumed.
    let old_name = payout::journal::Journal::open_read_only(&s.journal())
        .unwrap()
        .batch_by_id(1)
        .unwrap()
        .unwrap()
        .name;
    let old = s.run(&["resume", &old_name]);
    assert_eq!(old.code, 6, "{old:?}");
    assert!(old.stderr.contains("superseded"), "{old:?}");
    assert_eq!(s.run(&["resume"]).code, 0, "nothing left anywhere");
    assert_paid_exactly_once(&h, &edited);
}

/// Runs `payout run` on a file whose first read gives `rows` and every later read the same rows
/// with a repeat of the last one added; answers the outcome and how many reads there were.
///
/// The file is a regular one (a FIFO is now read once, into a spool): inotify tells when a read
/// ends, and the next content is renamed into place before payout opens the file again (what
/// comes between two reads — the account check, the journal — takes far longer).
fn run_on_a_file_that_changes(
    s: &Scratch,
    emu: &BackgroundEmulator,
    rows: &[Row],
) -> (Outcome, usize) {
    let checked = csv_text(rows);
    let mut repeated = rows.to_vec();
    repeated.push(rows[rows.len() - 1].clone());
    let changed = csv_text(&repeated);
    let file = s.write("changing.csv", &checked);
    let dir = std::ffi::CString::new(s.dir.path().to_str().unwrap()).unwrap();
    // SAFETY: plain system calls on a descriptor this function owns.
    let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: a valid descriptor and NUL-terminated path.
    let wd = unsafe {
        libc::inotify_add_watch(fd, dir.as_ptr(), libc::IN_OPEN | libc::IN_CLOSE_NOWRITE)
    };
    assert!(wd >= 0);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let (next, tmp) = (file.clone(), s.path("changing.tmp"));
    let watcher = std::thread::spawn(move || {
        use std::sync::atomic::Ordering;
        let mut later = vec![changed.clone(), changed];
        let mut reads = 0;
        let mut buf = [0u8; 4096];
        loop {
            let finished = stop.load(Ordering::SeqCst);
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, 20) };
            // SAFETY: reads into a buffer of the length given.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                if finished {
                    break;
                }
                continue;
            }
            let mut at = 0usize;
            while at < n as usize {
                // SAFETY: the kernel wrote whole events; read_unaligned copes with the buffer.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                let name_bytes =
                    &buf[at + std::mem::size_of::<libc::inotify_event>()..][..ev.len as usize];
                let name = String::from_utf8_lossy(name_bytes);
                let name = name.trim_end_matches('\0');
                at += std::mem::size_of::<libc::inotify_event>() + ev.len as usize;
                if name != "changing.csv" {
                    continue;
                }
                if ev.mask & libc::IN_OPEN != 0 {
                    reads += 1;
                }
                if ev.mask & libc::IN_CLOSE_NOWRITE != 0 && !later.is_empty() {
                    std::fs::write(&tmp, later.remove(0)).unwrap();
                    std::fs::rename(&tmp, &next).unwrap();
                }
            }
        }
        // SAFETY: closes the descriptor opened above.
        unsafe { libc::close(fd) };
        reads
    });
    let out = s.run(&args(&["run", file.to_str().unwrap()], &target_args(emu)));
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    (out, watcher.join().unwrap())
}

/// A file is read once to be validated and again to be imported; the later read does not look
/// for repeats again, so it must prove it read the rows that were checked. A FIFO in place of
/// the file gives each read other content: the second adds a repeat of a row.
#[test]
fn a_file_that_changes_between_its_reads_is_refused_and_nothing_is_paid() {
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig::default());
    let (out, reads) = run_on_a_file_that_changes(&s, &emu, &rows(3));
    assert_eq!(reads, 2, "validated, then imported: {out:?}");
    assert_eq!(out.code, 5, "{out:?}");
    assert!(
        out.stderr.contains("the file changed while payout read it"),
        "{out:?}"
    );
    assert_eq!(emu.handle().stats().payments, 0, "{out:?}");
}

/// The same, with another batch on the ledger: then the file is also read to be planned
/// against that batch, and that read is where the change shows.
#[test]
fn a_file_that_changes_before_it_is_planned_against_the_ledger_is_refused() {
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig::default());
    let all = rows(6);
    let earlier = s.write("earlier.csv", &csv_text(&all[..3]));
    let first = s.run(&args(
        &["run", earlier.to_str().unwrap()],
        &target_args(&emu),
    ));
    assert_eq!(first.code, 0, "{first:?}");
    let (out, reads) = run_on_a_file_that_changes(&s, &emu, &all[3..]);
    assert_eq!(reads, 2, "validated, then planned: {out:?}");
    assert_eq!(out.code, 5, "{out:?}");
    assert!(
        out.stderr.contains("the file changed while payout read it"),
        "{out:?}"
    );
    assert_eq!(
        emu.handle().stats().payments,
        3,
        "only the earlier batch: {out:?}"
    );
}
