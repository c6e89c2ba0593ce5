//! `payout run --platform prolific` through the real binary and its real HTTP client against the
//! Prolific emulator: production only, rehearsed by a dry run, confirmed; every bad row refused
//! with its line and nothing set up; the same command again pays nothing more; the token never
//! printed.

use std::process::Command;

use payout::emulator::prolific::{BackgroundProlific, ProlificConfig, ProlificSeed};

use crate::support::*;

const TOKEN: &str = "payout-prolific-emulator-token";

struct Study {
    emu: BackgroundProlific,
    study: String,
    people: Vec<(String, String)>,
}

fn study(n: usize, config: ProlificConfig) -> Study {
    let mut s = ProlificSeed::new();
    let ws = s.workspace("Lab", "GBP", 10_000_000);
    let study = s.study(&ws, "Follow-up");
    let people = s.generate(&study, n);
    let emu = BackgroundProlific::start(s.build(), config).expect("start the Prolific emulator");
    Study { emu, study, people }
}

fn prolific(s: &Scratch, args: &[&str]) -> Outcome {
    let mut cmd: Command = s.payout(args);
    cmd.env("PROLIFIC_TOKEN", TOKEN);
    let out = Outcome::from(cmd.output().expect("run payout"));
    assert!(
        !out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN),
        "the token was printed: {out:?}"
    );
    out
}

fn args<'a>(st: &'a Study, url: &'a str, file: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "run",
        file,
        "--platform",
        "prolific",
        "--study",
        &st.study,
        "--endpoint-url",
        url,
        "--testing-endpoint",
        "--backoff-ms",
        "2",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn a_prolific_bonus_file_is_rehearsed_confirmed_and_paid_exactly_once() {
    let st = study(30, ProlificConfig::default());
    let s = Scratch::new();
    let mut csv = String::from("participant_id,amount,reason\n");
    for (i, (p, _)) in st.people.iter().enumerate() {
        csv.push_str(&format!("{p},{}.{:02},thanks\n", 1 + i % 3, (i * 25) % 100));
    }
    let file = s.write("b.csv", &csv).display().to_string();
    let url = st.emu.url();

    // Prolific has no sandbox: without --production a batch is refused, nothing called.
    let out = prolific(&s, &args(&st, &url, &file, &[]));
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("needs --production"), "{out:?}");
    // Production before a rehearsal: refused, nothing set up.
    let out = prolific(&s, &args(&st, &url, &file, &["--production", "--yes"]));
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("has not been rehearsed"), "{out:?}");
    assert_eq!(st.emu.handle().stats().setups, 0);

    let out = prolific(&s, &args(&st, &url, &file, &["--dry-run"]));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("rehearsal is recorded"), "{out:?}");
    assert!(
        out.stderr.contains("£"),
        "amounts in the study's currency: {out:?}"
    );
    assert_eq!(
        st.emu.handle().stats().setups,
        0,
        "a dry run sets nothing up"
    );

    let out = prolific(&s, &args(&st, &url, &file, &["--production", "--yes"]));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("Prolific's totals for 30 bonuses"),
        "{out:?}"
    );
    assert!(out.stderr.contains("30 paid"), "{out:?}");
    let paid = st.emu.handle().paid_by_participant(&st.study);
    for (i, (p, _)) in st.people.iter().enumerate() {
        let want = (100 * (1 + i % 3) + (i * 25) % 100) as i64;
        assert_eq!(paid.get(p), Some(&vec![want]), "{p}");
    }
    assert!(st.emu.handle().double_payments().is_empty());

    // The same command again: the batch is recognised, nothing more is set up or paid.
    let setups = st.emu.handle().stats().setups;
    let out = prolific(&s, &args(&st, &url, &file, &["--production", "--yes"]));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("Continuing batch"), "{out:?}");
    assert_eq!(st.emu.handle().stats().setups, setups);
    assert_eq!(st.emu.handle().paid_by_participant(&st.study), paid);
}

#[test]
fn bad_rows_are_refused_with_their_lines_and_nothing_is_set_up() {
    let st = study(3, ProlificConfig::default());
    let s = Scratch::new();
    let (p0, _) = &st.people[0];
    let stranger = "60ffe5c8371090c7041d43f8";
    let csv = format!(
        "participant_id,amount\n{p0},1.234\nA143XRCI1YXAFE,1.00\n{p0},£1\n{stranger},1.00\n"
    );
    let file = s.write("bad.csv", &csv).display().to_string();
    let url = st.emu.url();
    let out = prolific(&s, &args(&st, &url, &file, &["--dry-run"]));
    assert_eq!(out.code, 5, "{out:?}");
    for line in ["line 2", "line 3", "line 4"] {
        assert!(out.stderr.contains(line), "{line}: {out:?}");
    }
    // The file's values are fine now; one participant did not take part in the study.
    let csv = format!("participant_id,amount\n{p0},1.00\n{stranger},1.00\n");
    let file = s.write("stranger.csv", &csv).display().to_string();
    let out = prolific(&s, &args(&st, &url, &file, &["--dry-run"]));
    assert_eq!(out.code, 5, "{out:?}");
    assert!(
        out.stderr
            .contains("line 3: participant 60ffe5c8371090c7041d43f8 did not take part"),
        "{out:?}"
    );
    assert_eq!(st.emu.handle().stats().setups, 0);
}

#[test]
fn a_participant_with_two_submissions_is_paid_only_when_the_file_says_which() {
    let mut seed = ProlificSeed::new();
    let ws = seed.workspace("Lab", "USD", 1_000_000);
    let st_id = seed.study(&ws, "Two waves");
    let p = seed.participant();
    let s1 = seed.submission(&st_id, &p);
    let _s2 = seed.submission(&st_id, &p);
    let emu = BackgroundProlific::start(seed.build(), ProlificConfig::default()).unwrap();
    let st = Study {
        emu,
        study: st_id,
        people: vec![],
    };
    let s = Scratch::new();
    let url = st.emu.url();
    let file = s
        .write("one.csv", &format!("PROLIFIC_PID,bonus\n{p},2.00\n"))
        .display()
        .to_string();
    let out = prolific(&s, &args(&st, &url, &file, &["--dry-run"]));
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("has 2 submissions"), "{out:?}");
    // With the submission given (a pasted bulk-bonus box line), it is paid.
    let file = s
        .write("paste.txt", &format!("{s1},2.00\n"))
        .display()
        .to_string();
    let out = prolific(&s, &args(&st, &url, &file, &["--dry-run"]));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("$2.00"),
        "dollars for a USD study: {out:?}"
    );
    let out = prolific(&s, &args(&st, &url, &file, &["--production", "--yes"]));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(st.emu.handle().bonus_payments(&s1), Some(vec![200]));
}
