//! Smaller edges of issue 14: a malformed IPv6 endpoint, a revoke-only API file, website
//! columns that merely start with "Current", a batch continued from another file, old journals
//! read by read-only commands, and a damaged journal.

use crate::support::*;

#[test]
fn an_unclosed_ipv6_endpoint_is_a_usage_error_at_once() {
    let s = Scratch::new();
    let file = s.write("b.csv", &csv_text(&rows(2)));
    let out = s.run(&[
        "run",
        file.to_str().unwrap(),
        "--sandbox",
        "--testing-endpoint",
        "--endpoint-url",
        "http://[::1",
    ]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("host"), "{out:?}");
    let mut env = s.payout(&["run", file.to_str().unwrap(), "--emulator"]);
    env.env("PAYOUT_ENDPOINT_URL", "http://[::1:80");
    let env: Outcome = env.output().unwrap().into();
    assert_eq!(env.code, 2, "{env:?}");
    assert!(!s.journal().exists());
    // Production without a terminal is refused first, as before the variable is looked at.
    let mut prod = s.payout(&["run", file.to_str().unwrap(), "--production"]);
    prod.env("PAYOUT_ENDPOINT_URL", "http://[::1:80");
    let prod: Outcome = prod.output().unwrap().into();
    assert_eq!(prod.code, 6, "{prod:?}");
    assert!(prod.stderr.contains("at a terminal"), "{prod:?}");
}

#[test]
fn a_revoke_only_api_file_without_a_score_column_is_accepted_and_revokes() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let t = target_args(&emu);
    let grant = s.write(
        "grant.csv",
        "WorkerId,QualificationTypeId,IntegerValue\nA1B2C3D4E5F6,Panel,3\nA2B2C3D4E5F6,Panel,4\n",
    );
    let out = s.run(&args(
        &["run", grant.to_str().unwrap(), "--create-missing"],
        &t,
    ));
    assert_eq!(out.code, 0, "{out:?}");
    let h = emu.handle();
    let panel = h.qualification_type_id("Panel").expect("Panel created");
    assert_eq!(h.qualification_score(&panel, "A1B2C3D4E5F6"), Some(3));
    let revoke = s.write(
        "revoke.csv",
        "WorkerId,Action\nA1B2C3D4E5F6,revoke\nA2B2C3D4E5F6,Revoke\n",
    );
    let out = s.run(&args(
        &[
            "run",
            revoke.to_str().unwrap(),
            "--kind",
            "qualification",
            "--qualification",
            "Panel",
        ],
        &t,
    ));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(h.qualification_score(&panel, "A1B2C3D4E5F6"), None);
    assert_eq!(h.qualification_score(&panel, "A2B2C3D4E5F6"), None);
    // A grant in such a file has no score to give: refused at its row, nothing sent.
    let mixed = s.write(
        "mixed.csv",
        "WorkerId,Action\nA1B2C3D4E5F6,revoke\nA3B2C3D4E5F6,grant\n",
    );
    let before = h.stats().total_requests;
    let out = s.run(&args(
        &[
            "run",
            mixed.to_str().unwrap(),
            "--kind",
            "qualification",
            "--qualification",
            "Panel",
        ],
        &t,
    ));
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("line 3"), "{out:?}");
    assert!(out.stderr.contains("no score column"), "{out:?}");
    assert_eq!(h.stats().total_requests, before);
}

#[test]
fn a_website_column_that_merely_starts_with_current_is_refused_like_any_unknown_column() {
    let s = Scratch::new();
    for column in ["Current score", "Current Panel", "Currently"] {
        let file = s.write(
            "workers.csv",
            &format!("Worker ID,UPDATE-Panel,{column}\nA1B2C3D4E5F6,5,7\n"),
        );
        let out = s.run(&["run", file.to_str().unwrap(), "--emulator"]);
        assert_eq!(out.code, 5, "{column}: {out:?}");
        assert!(
            out.stderr.contains("unknown column") && out.stderr.contains(column),
            "{column}: {out:?}"
        );
    }
    // The website's own read-only columns are still read as such.
    let file = s.write(
        "workers.csv",
        "Worker ID,CURRENT-Panel,UPDATE-Panel,CURRENT BlockStatus\nA1B2C3D4E5F6,4,5,\n",
    );
    let out = s.run(&["run", file.to_str().unwrap(), "--emulator", "--dry-run"]);
    assert_eq!(out.code, 0, "{out:?}");
}

#[test]
fn continuing_a_batch_from_another_file_with_the_same_content_names_that_file() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let t = target_args(&emu);
    let text = csv_text(&rows(4));
    let first = s.write("first.csv", &text);
    run_and_kill_at(
        &s,
        &emu,
        &args(&["run", first.to_str().unwrap()], &t),
        KillAt::Payments(1),
    );
    let copy = s.write("copy.csv", &text);
    let out = s.run(&args(&["run", copy.to_str().unwrap()], &t));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("Continuing batch")
            && out.stderr.contains(first.to_str().unwrap())
            && !out.stderr.contains("same file"),
        "{out:?}"
    );
    assert_paid_exactly_once(&emu.handle(), &rows(4));
}

fn fixture(s: &Scratch, name: &str) {
    let fixtures = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(format!("{fixtures}/{name}"), s.journal()).unwrap();
}

#[test]
fn status_and_doctor_say_when_reading_an_old_journal_upgraded_it() {
    for (name, from) in [
        ("journal-v1.sqlite", 1),
        ("journal-v2.sqlite", 2),
        ("journal-v3.sqlite", 3),
    ] {
        let s = Scratch::new();
        fixture(&s, name);
        let st = s.run(&["status"]);
        assert_eq!(st.code, 0, "{name}: {st:?}");
        assert!(
            st.stderr
                .contains(&format!("upgraded from schema {from} to 6"))
                && st
                    .stderr
                    .contains("older than this one can no longer open it"),
            "{name}: the upgrade is not said: {st:?}"
        );
        // Read again, it is current: nothing more is said.
        let again = s.run(&["status"]);
        assert!(!again.stderr.contains("upgraded"), "{again:?}");

        let s = Scratch::new();
        fixture(&s, name);
        let emu = emulator(signed_config());
        let out: Outcome = s
            .payout(&[
                "doctor",
                "--endpoint-url",
                &emu.url(),
                "--testing-endpoint",
                "--json",
            ])
            .output()
            .unwrap()
            .into();
        let v = json_output(&out);
        let health = v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "journal health")
            .unwrap_or_else(|| panic!("{name}: no journal health check: {out:?}"));
        assert!(
            health["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("upgraded from schema {from} to 6")),
            "{name}: {health}"
        );
    }
}

#[test]
fn a_damaged_journal_ends_with_what_happened_and_the_fix() {
    use std::io::{Seek, SeekFrom, Write};
    let s = Scratch::new();
    let (_emu, _file) = paid_batch(&s, 40);
    let len = std::fs::metadata(s.journal()).unwrap().len();
    assert!(len > 3 * 4096, "a journal of several pages: {len}");
    // Every page after the first (the header stays, so it is still a SQLite file) becomes noise.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(s.journal())
        .unwrap();
    f.seek(SeekFrom::Start(4096)).unwrap();
    f.write_all(&vec![0xA5; (len - 4096) as usize]).unwrap();
    drop(f);
    let out = s.run(&["resume"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("the journal is damaged") && out.stderr.contains(".recover"),
        "{out:?}"
    );
}

#[test]
fn a_full_disk_under_the_journal_ends_with_what_was_kept_and_the_fix() {
    use std::os::unix::process::CommandExt;
    let s = Scratch::new();
    let (emu, _file) = paid_batch(&s, 3);
    let used: u64 = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut p = s.journal().into_os_string();
            p.push(suffix);
            std::fs::metadata(p).ok().map(|m| m.len())
        })
        .max()
        .unwrap();
    let big = s.write("big.csv", &csv_text(&rows(3000)[3..]));
    let mut cmd = s.payout(&args(&["run", big.to_str().unwrap()], &target_args(&emu)));
    // No file payout writes may grow past a little more than the journal is now: the disk is
    // full, as far as payout can tell (writes past the limit fail; SIGXFSZ is ignored).
    let limit = used + 10_000;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out: Outcome = cmd.output().unwrap().into();
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("full or failing") && out.stderr.contains("Free space"),
        "{out:?}"
    );
}
