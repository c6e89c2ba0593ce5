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
    ws: String,
}

fn study(n: usize, config: ProlificConfig) -> Study {
    let mut s = ProlificSeed::new();
    let ws = s.workspace("Lab", "GBP", 10_000_000);
    let study = s.study(&ws, "Follow-up");
    let people = s.generate(&study, n);
    let emu = BackgroundProlific::start(s.build(), config).expect("start the Prolific emulator");
    Study {
        emu,
        study,
        people,
        ws,
    }
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
    // The README says the token never reaches the journal: not a byte of it.
    let journal = journal_bytes(&s.journal());
    assert!(
        !journal.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
        "the token is in the journal"
    );

    // The same command again: the batch is recognised, nothing more is set up or paid — and a
    // balance that no longer covers the whole file does not matter, nothing is left to pay.
    st.emu.handle().set_balance(&st.ws, 100);
    let setups = st.emu.handle().stats().setups;
    let out = prolific(&s, &args(&st, &url, &file, &["--production", "--yes"]));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("Continuing batch"), "{out:?}");
    assert!(
        !out.stderr.contains("double payment"),
        "the batch's own payments are not doubles: {out:?}"
    );
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
        ws,
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

#[test]
fn the_example_file_pays_into_the_built_in_prolific_emulator_and_the_same_command_continues() {
    let s = Scratch::new();
    let file = format!(
        "{}/examples/prolific-bonuses.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    // No --platform: the header says Prolific. No token: the built-in emulator needs none.
    let out = s.run(&["run", &file, "--emulator"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("PROLIFIC EMULATOR"), "{out:?}");
    assert!(out.stderr.contains("5 paid"), "{out:?}");
    assert!(out.stderr.contains("£7.25"), "{out:?}");
    let again = s.run(&["run", &file, "--emulator"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("Continuing batch"), "{again:?}");
    assert!(
        !again.stderr.contains("Prolific's totals"),
        "nothing set up again: {again:?}"
    );
}

/// Whether the journal holds a chunk whose pay is sent and not yet answered.
fn pay_in_flight(journal: &std::path::Path) -> bool {
    let Ok(c) =
        rusqlite::Connection::open_with_flags(journal, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return false;
    };
    c.query_row(
        "SELECT COUNT(*) FROM chunks WHERE state = 'pay_sent'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .is_ok_and(|n| n > 0)
}

/// The batch's name, as payout printed it.
fn batch_name(out: &Outcome) -> Option<String> {
    let i = out.stderr.find("batch prolific-")?;
    let rest = &out.stderr[i + "batch ".len()..];
    Some(rest.split([' ', ':']).next()?.to_owned())
}

#[test]
fn a_thousand_rows_under_faults_and_kill_9s_through_the_binary_are_each_paid_exactly_once() {
    use payout::emulator::prolific::FaultRates;
    use std::time::{Duration, Instant};
    let seeds: u64 = std::env::var("PAYOUT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let started = Instant::now();
    for seed in 0..seeds {
        let config = ProlificConfig {
            seed,
            setup_faults: FaultRates::uniform(0.05, 0.05, 0.05),
            pay_faults: FaultRates::uniform(0.1, 0.1, 0.1),
            read_faults: FaultRates::uniform(0.01, 0.01, 0.01),
            contention_window: Some(Duration::from_millis(2)),
            contended_pay_applies: seed % 2 == 0,
            late_pay_rate: 0.2,
            late_pay_delay: Duration::from_secs(600),
            page_size: 100,
            // Calls take a little while, so a kill can land while a pay is on its way.
            latency: Duration::from_millis(3),
            ..ProlificConfig::default()
        };
        let st = study(1000, config);
        let s = Scratch::new();
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut csv = String::from("Participant id,bonus\n");
        let mut asked = std::collections::BTreeMap::new();
        for (p, _) in &st.people {
            let cents = 25 * rng.u64(1..12);
            asked.insert(p.clone(), vec![cents as i64]);
            csv.push_str(&format!("{p},{}.{:02}\n", cents / 100, cents % 100));
        }
        let file = s.write("b.csv", &csv).display().to_string();
        let url = st.emu.url();
        let rehearse = prolific(&s, &args(&st, &url, &file, &["--dry-run"]));
        assert_eq!(rehearse.code, 0, "seed {seed}: {rehearse:?}");
        let run = args(
            &st,
            &url,
            &file,
            &[
                "--production",
                "--yes",
                "--settle",
                "0s",
                "--chunk-size",
                "100",
            ],
        );
        let mut name = None;
        let mut kills = 0;
        for attempt in 0.. {
            assert!(attempt < 60, "seed {seed}: no end");
            if kills < 2 {
                let mut cmd = s.payout(&run);
                cmd.env("PROLIFIC_TOKEN", TOKEN);
                if kills == 0 {
                    // kill -9 at a random point of the run.
                    kill_9_when(cmd, Duration::from_millis(rng.u64(50..1500)), || false);
                } else {
                    // Between "pay sent" (committed) and the pay's answer being journaled.
                    kill_9_when(cmd, Duration::from_secs(60), || pay_in_flight(&s.journal()));
                }
                kills += 1;
                continue;
            }
            let out = prolific(&s, &run);
            name = name.or_else(|| batch_name(&out));
            match out.code {
                0 => break,
                4 if out.stderr.contains("not observed") => {
                    // The dashboard: whatever was paid lands with time; what still is not
                    // seen after that was not paid.
                    st.emu.handle().advance_clock(Duration::from_secs(3600));
                    let seen = prolific(&s, &run);
                    if seen.code == 0 {
                        break;
                    }
                    if seen.stderr.contains("not observed") {
                        let n = name.clone().expect("the batch's name was printed");
                        let r = prolific(&s, &["resolve", &n, "--not-paid"]);
                        assert_eq!(r.code, 0, "seed {seed}: {r:?}");
                    }
                }
                4 => {}
                other => panic!("seed {seed}: exit {other}: {out:?}"),
            }
        }
        let h = st.emu.handle();
        assert!(
            h.double_payments().is_empty(),
            "seed {seed}: {:?}",
            h.double_payments()
        );
        let mut got = h.paid_by_participant(&st.study);
        got.retain(|_, v| !v.is_empty());
        let wrong: Vec<_> = asked
            .iter()
            .filter(|(p, v)| got.get(*p) != Some(v))
            .map(|(p, v)| format!("{p}: asked {v:?}, paid {:?}", got.get(p)))
            .collect();
        assert!(
            wrong.is_empty(),
            "seed {seed}: {} wrong, e.g. {:?}",
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "bounded in time"
        );
    }
}

#[test]
fn pays_that_land_after_the_settle_time_are_not_observed_then_seen_by_the_same_command() {
    use std::time::Duration;
    let st = late_study(5);
    let s = Scratch::new();
    let mut csv = String::from("participant_id,amount\n");
    for (p, _) in &st.people {
        csv.push_str(&format!("{p},1.25\n"));
    }
    let file = s.write("late.csv", &csv).display().to_string();
    let url = st.emu.url();
    let run = args(
        &st,
        &url,
        &file,
        &[
            "--production",
            "--yes",
            "--skip-rehearsal",
            "--settle",
            "0s",
        ],
    );
    let out = prolific(&s, &run);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("5 not observed"), "{out:?}");
    let status = prolific(&s, &["status"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stderr.contains("on Prolific"), "{status:?}");
    assert!(status.stderr.contains("Not observed"), "{status:?}");
    assert!(status.stderr.contains("£1.25"), "{status:?}");
    // The pay lands later; the same command sees it first and pays nothing more.
    st.emu.handle().advance_clock(Duration::from_secs(601));
    let again = prolific(&s, &run);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("5 paid"), "{again:?}");
    assert_eq!(st.emu.handle().stats().setups, 1, "nothing set up again");
    assert!(st.emu.handle().double_payments().is_empty());
    let status = prolific(&s, &["status"]);
    assert!(!status.stderr.contains("Not observed"), "{status:?}");
}

#[test]
fn a_submission_already_showing_the_same_bonus_is_named_and_the_dry_run_is_no_rehearsal() {
    let mut seed = ProlificSeed::new();
    let ws = seed.workspace("Lab", "GBP", 1_000_000);
    let st_id = seed.study(&ws, "Paid by hand");
    let people = seed.generate(&st_id, 2);
    seed.paid_before(&people[0].1, &[150]);
    let emu = BackgroundProlific::start(seed.build(), ProlificConfig::default()).unwrap();
    let st = Study {
        emu,
        study: st_id,
        people,
        ws,
    };
    let s = Scratch::new();
    let url = st.emu.url();
    let csv = format!(
        "participant_id,amount\n{},1.50\n{},1.50\n",
        st.people[0].0, st.people[1].0
    );
    let file = s.write("again.csv", &csv).display().to_string();
    let out = prolific(&s, &args(&st, &url, &file, &["--dry-run"]));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("line 2: submission"), "{out:?}");
    assert!(out.stderr.contains("probable double payment"), "{out:?}");
    assert!(
        out.stderr.contains("Not recorded as a rehearsal"),
        "{out:?}"
    );
    let out = prolific(&s, &args(&st, &url, &file, &["--production", "--yes"]));
    assert_eq!(out.code, 6, "no rehearsal was recorded: {out:?}");
    assert_eq!(st.emu.handle().stats().setups, 0);
}

#[test]
fn a_bonus_over_the_cap_or_a_balance_that_does_not_cover_the_file_is_refused_before_any_set_up() {
    let st = study(2, ProlificConfig::default());
    let s = Scratch::new();
    let url = st.emu.url();
    let (p0, p1) = (&st.people[0].0, &st.people[1].0);
    // 30 typed for 0.30: above --max-bonus (25.00 by default), refused naming the line.
    let file = s
        .write(
            "cap.csv",
            &format!("participant_id,amount\n{p0},0.30\n{p1},30\n"),
        )
        .display()
        .to_string();
    let out = prolific(&s, &args(&st, &url, &file, &["--dry-run"]));
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("line 3 (30.00)"), "{out:?}");
    // A balance of £1.00 does not cover £2.50 of bonuses.
    st.emu.handle().set_balance(&st.ws, 100);
    let file = s
        .write(
            "poor.csv",
            &format!("participant_id,amount\n{p0},1.25\n{p1},1.25\n"),
        )
        .display()
        .to_string();
    let out = prolific(&s, &args(&st, &url, &file, &["--dry-run"]));
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("does not cover"), "{out:?}");
    assert_eq!(st.emu.handle().stats().setups, 0);
}

/// A study whose every accepted pay lands only 600 s (of the emulator's clock) after it.
fn late_study(n: usize) -> Study {
    study(
        n,
        ProlificConfig {
            late_pay_rate: 1.0,
            late_pay_delay: std::time::Duration::from_secs(600),
            ..ProlificConfig::default()
        },
    )
}

/// A file paying every person of the study, 1.25 each, with a reason.
fn flat_file(s: &Scratch, st: &Study, name: &str) -> String {
    let mut csv = String::from("participant_id,amount,reason\n");
    for (p, _) in &st.people {
        csv.push_str(&format!("{p},1.25,follow-up\n"));
    }
    s.write(name, &csv).display().to_string()
}

#[test]
fn the_report_of_a_prolific_batch_gives_each_row_its_bulk_id_state_and_prolifics_fees() {
    let st = study(12, ProlificConfig::default());
    let s = Scratch::new();
    let file = flat_file(&s, &st, "r.csv");
    let url = st.emu.url();
    let extra = [
        "--production",
        "--yes",
        "--skip-rehearsal",
        "--chunk-size",
        "5",
    ];
    let out = prolific(&s, &args(&st, &url, &file, &extra));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("of 12 paid"),
        "a progress line while paying: {out:?}"
    );
    let report = prolific(&s, &["report"]);
    assert_eq!(report.code, 0, "{report:?}");
    let mut rows = csv::Reader::from_reader(report.stdout.as_bytes());
    let header = rows.headers().expect("a header").clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column in {header:?}"))
    };
    let (outcome, bulk, fees, currency, reason, participant, submission, amount) = (
        col("outcome"),
        col("bulk_id"),
        col("chunk_fees"),
        col("currency"),
        col("reason"),
        col("participant_id"),
        col("submission_id"),
        col("amount"),
    );
    let records: Vec<csv::StringRecord> = rows.records().map(|r| r.expect("a row")).collect();
    assert_eq!(records.len(), 12, "{}", report.stdout);
    let mut bulk_ids = std::collections::BTreeSet::new();
    for (r, (p, sub)) in records.iter().zip(&st.people) {
        assert_eq!(&r[outcome], "paid", "{r:?}");
        assert!(r[bulk].len() > 10, "a bulk id: {r:?}");
        bulk_ids.insert(r[bulk].to_owned());
        assert!(r[fees].starts_with('£'), "Prolific's fees: {r:?}");
        assert_eq!(&r[currency], "GBP");
        assert_eq!(&r[reason], "follow-up");
        assert_eq!(&r[participant], p.as_str());
        assert_eq!(&r[submission], sub.as_str());
        assert_eq!(&r[amount], "1.25");
    }
    assert_eq!(bulk_ids.len(), 3, "12 rows in chunks of 5: {bulk_ids:?}");
    let json = prolific(&s, &["report", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(12), "{}", json.stdout);
}

#[test]
fn resume_observes_a_prolific_batch_first_and_pays_nothing_more() {
    use std::time::Duration;
    let st = late_study(12);
    let s = Scratch::new();
    let file = flat_file(&s, &st, "late.csv");
    let url = st.emu.url();
    let extra = [
        "--production",
        "--yes",
        "--skip-rehearsal",
        "--chunk-size",
        "5",
        "--settle",
        "0s",
    ];
    let out = prolific(&s, &args(&st, &url, &file, &extra));
    assert_eq!(out.code, 4, "{out:?}");
    // The evidence: the balance then and now, and each row's pay and bonuses before and now.
    assert!(
        out.stderr.contains("Evidence for the rows not observed"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("before this run's first pay;") && !out.stderr.contains("not recorded"),
        "{out:?}"
    );
    assert_eq!(
        out.stderr
            .matches("its bonuses before: no bonus; now: no bonus")
            .count(),
        12,
        "{out:?}"
    );
    let name = batch_name(&out).expect("a batch name");
    let report = prolific(&s, &["report", &name]);
    assert_eq!(
        report.stdout.matches("not observed").count(),
        12,
        "{report:?}"
    );
    // Not observed: a cancel cannot decide them and changes nothing.
    let cancel = prolific(&s, &["cancel", &name]);
    assert_ne!(cancel.code, 0, "{cancel:?}");
    assert!(cancel.stderr.contains("payout resolve"), "{cancel:?}");
    assert!(
        prolific(&s, &["status", &name])
            .stderr
            .contains("Not observed"),
        "still not observed"
    );
    // The pays land; resume (without the file) sees them first and pays nothing more.
    st.emu.handle().advance_clock(Duration::from_secs(601));
    let setups = st.emu.handle().stats().setups;
    // Elsewhere than where it was recorded: refused, nothing called.
    let elsewhere = prolific(
        &s,
        &[
            "resume",
            &name,
            "--yes",
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--testing-endpoint",
        ],
    );
    assert_ne!(elsewhere.code, 0, "{elsewhere:?}");
    assert!(elsewhere.stderr.contains("works through"), "{elsewhere:?}");
    let resumed = prolific(&s, &["resume", &name, "--yes"]);
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert!(resumed.stderr.contains("12 paid"), "{resumed:?}");
    assert_eq!(
        st.emu.handle().stats().setups,
        setups,
        "nothing set up again"
    );
    assert!(st.emu.handle().double_payments().is_empty());
    let paid = st.emu.handle().paid_by_participant(&st.study);
    for (p, _) in &st.people {
        assert_eq!(paid.get(p), Some(&vec![125]), "{p}");
    }
}

#[test]
fn a_cancelled_prolific_batch_closes_its_unpaid_rows_and_is_never_paid_again() {
    let st = late_study(7);
    let s = Scratch::new();
    let file = flat_file(&s, &st, "c.csv");
    let url = st.emu.url();
    let extra = [
        "--production",
        "--yes",
        "--skip-rehearsal",
        "--settle",
        "0s",
    ];
    let run = args(&st, &url, &file, &extra);
    let out = prolific(&s, &run);
    assert_eq!(out.code, 4, "{out:?}");
    let name = batch_name(&out).expect("a batch name");
    // The operator's word: not paid. Then cancel instead of paying them again.
    let resolved = prolific(&s, &["resolve", &name, "--not-paid"]);
    assert_eq!(resolved.code, 0, "{resolved:?}");
    let setups = st.emu.handle().stats().setups;
    let cancel = prolific(&s, &["cancel", &name]);
    assert_eq!(cancel.code, 0, "{cancel:?}");
    assert!(cancel.stderr.contains("cancelled"), "{cancel:?}");
    let status = prolific(&s, &["status", &name]);
    assert!(status.stderr.contains("cancelled          7"), "{status:?}");
    let report = prolific(&s, &["report", &name]);
    assert_eq!(
        report.stdout.matches(",cancelled,").count(),
        7,
        "{report:?}"
    );
    // Never resumed, and the same file is not paid again as a new batch.
    let resumed = prolific(&s, &["resume", &name, "--yes"]);
    assert_ne!(resumed.code, 0, "{resumed:?}");
    assert!(resumed.stderr.contains("never resumed"), "{resumed:?}");
    let again = prolific(&s, &run);
    assert_ne!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("was cancelled"), "{again:?}");
    assert_eq!(st.emu.handle().stats().setups, setups, "nothing set up");
    assert_eq!(
        st.emu.handle().stats().pays_accepted,
        1,
        "one pay, the first run's"
    );
}
