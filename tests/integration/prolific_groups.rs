//! Prolific participant groups through the real binary and its real HTTP client against the
//! Prolific emulator: every group's final membership is exactly what the file asks — under
//! lost answers, 5xx after applying, drops before applying and kill -9s — members the file does
//! not name are kept (no PATCH), a change whose answer was lost is seen in the member list and
//! never sent again, a missing group is refused before any mutating call, and a group to
//! create is created exactly once across a kill.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use payout::emulator::prolific::{
    BackgroundProlific, FaultRates, ProlificConfig, ProlificHandle, ProlificSeed,
};

use crate::support::*;

const TOKEN: &str = "payout-prolific-emulator-token";

fn payout(s: &Scratch, args: &[&str]) -> Outcome {
    let mut cmd: Command = s.payout(args);
    cmd.env("PROLIFIC_TOKEN", TOKEN);
    let out = Outcome::from(cmd.output().expect("run payout"));
    assert!(
        !out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN),
        "the token was printed: {out:?}"
    );
    out
}

fn run_args<'a>(url: &'a str, file: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "run",
        file,
        "--platform",
        "prolific",
        "--endpoint-url",
        url,
        "--testing-endpoint",
        "--backoff-ms",
        "2",
    ];
    v.extend_from_slice(extra);
    v
}

/// Mutating calls the emulator received (anything but GET).
fn mutating_calls(h: &ProlificHandle) -> u64 {
    h.stats()
        .calls
        .iter()
        .filter(|(k, _)| !k.starts_with("GET "))
        .map(|(_, n)| n)
        .sum()
}

struct Lab {
    emu: BackgroundProlific,
    ws: String,
    /// Group name → id.
    groups: BTreeMap<String, String>,
    people: Vec<String>,
}

/// A workspace with `groups` groups of which each already holds the first `members` people.
fn lab(groups: usize, members: usize, people: usize, config: ProlificConfig) -> Lab {
    let mut s = ProlificSeed::new();
    let ws = s.workspace("Lab", "GBP", 1_000_000);
    let people: Vec<String> = (0..people).map(|_| s.participant()).collect();
    let mut ids = BTreeMap::new();
    for g in 0..groups {
        let name = format!("Group {g}");
        let id = s.group(&ws, &name, &people[..members]);
        ids.insert(name, id);
    }
    Lab {
        emu: BackgroundProlific::start(s.build(), config).expect("start the Prolific emulator"),
        ws,
        groups: ids,
        people,
    }
}

/// A group file: each participant added to or removed from some groups, at random; and the
/// membership it asks of each group, from what each group holds before.
fn random_file(
    lab: &Lab,
    rng: &mut fastrand::Rng,
    rows: usize,
    before: &BTreeMap<String, BTreeSet<String>>,
) -> (String, BTreeMap<String, BTreeSet<String>>) {
    let mut want = before.clone();
    let mut csv = String::from("participant_id,group,action\n");
    let names: Vec<&String> = lab.groups.keys().collect();
    let mut used = BTreeSet::new();
    while used.len() < rows {
        let p = &lab.people[rng.usize(..lab.people.len())];
        let g = names[rng.usize(..names.len())];
        if !used.insert((p.clone(), g.clone())) {
            continue;
        }
        let id = &lab.groups[g];
        // Half by name, half by ID: the same group either way.
        let named = if rng.bool() { g.clone() } else { id.clone() };
        if rng.u8(..4) == 0 {
            csv.push_str(&format!("{p},{named},remove\n"));
            want.get_mut(id).unwrap().remove(p);
        } else {
            csv.push_str(&format!("{p},{named},add\n"));
            want.get_mut(id).unwrap().insert(p.clone());
        }
    }
    (csv, want)
}

fn memberships(lab: &Lab) -> BTreeMap<String, BTreeSet<String>> {
    let h = lab.emu.handle();
    lab.groups
        .values()
        .map(|id| (id.clone(), h.group_members(id).unwrap_or_default()))
        .collect()
}

fn read_only(journal: &std::path::Path) -> Option<rusqlite::Connection> {
    rusqlite::Connection::open_with_flags(journal, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()
}

/// The highest call number the journal holds (-1 for none).
fn last_call(journal: &std::path::Path) -> i64 {
    read_only(journal)
        .and_then(|c| {
            c.query_row(
                "SELECT COALESCE(MAX(call), -1) FROM member_calls",
                [],
                |r| r.get(0),
            )
            .ok()
        })
        .unwrap_or(-1)
}

/// A call numbered above `after` is in flight: written "sent", its answer not yet journaled
/// (calls cut off by an earlier kill stay unanswered for ever: they do not count).
fn call_in_flight(journal: &std::path::Path, after: i64) -> bool {
    read_only(journal).is_some_and(|c| {
        c.query_row(
            "SELECT COUNT(*) FROM member_calls WHERE outcome IS NULL AND call > ?1",
            [after],
            |r| r.get::<_, i64>(0),
        )
        .is_ok_and(|n| n > 0)
    })
}

/// Every applied change named each (group, participant) at most once: nothing was sent again
/// that the member list had shown done.
fn sent_again(h: &ProlificHandle) -> Vec<(String, u64)> {
    h.stats()
        .member_changes
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .collect()
}

#[test]
fn a_group_file_is_rehearsed_confirmed_and_changed_exactly_as_asked_keeping_other_members() {
    let lab = lab(2, 3, 8, ProlificConfig::default());
    let s = Scratch::new();
    let p = &lab.people;
    // Group 0 holds p0..p2. Add p3, p4 (and p0, a member: a no-op); remove p1 (and p7, not a
    // member: a no-op). Group 1: add p5 by its ID.
    let g1 = &lab.groups["Group 1"];
    let csv = format!(
        "Participant ID,Group,Action\n{},Group 0,add\n{},Group 0,\n{},Group 0,add\n{},Group 0,remove\n{},Group 0,remove\n{},{g1},add\n",
        p[3], p[4], p[0], p[1], p[7], p[5]
    );
    let file = s.write("g.csv", &csv).display().to_string();
    let url = lab.emu.url();
    let h = lab.emu.handle();

    // Production without a rehearsal: refused, nothing sent.
    let out = payout(&s, &run_args(&url, &file, &["--production", "--yes"]));
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("rehearsed"), "{out:?}");
    assert_eq!(mutating_calls(&h), 0);

    // The dry run: no-ops and final sizes, nothing sent.
    let dry = payout(&s, &run_args(&url, &file, &["--dry-run"]));
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stderr
            .contains("2 to add, 1 to remove; 2 already so (no-ops); 3 → 4 members"),
        "{dry:?}"
    );
    assert!(dry.stderr.contains("1 to add, 0 to remove"), "{dry:?}");
    assert_eq!(mutating_calls(&h), 0, "a dry run sends nothing");

    // Production with --yes but no terminal is fine; without --yes it asks for a terminal.
    let out = payout(&s, &run_args(&url, &file, &["--production"]));
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("no --yes"), "{out:?}");
    assert_eq!(mutating_calls(&h), 0);
    let out = payout(&s, &run_args(&url, &file, &["--production", "--yes"]));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("6 done (2 of them already so"),
        "{out:?}"
    );

    let g0 = h.group_members(&lab.groups["Group 0"]).unwrap();
    let want0: BTreeSet<String> = [&p[0], &p[2], &p[3], &p[4]].map(String::clone).into();
    assert_eq!(g0, want0, "p2 (not in the file) is kept; p1 removed");
    let g1m = h.group_members(g1).unwrap();
    let want1: BTreeSet<String> = [&p[0], &p[1], &p[2], &p[5]].map(String::clone).into();
    assert_eq!(g1m, want1, "the other group's members are kept");
    assert!(h.stats().patch_overwrites.is_empty(), "no PATCH, ever");
    assert!(sent_again(&h).is_empty(), "{:?}", sent_again(&h));

    // The same command again changes nothing more.
    let calls = mutating_calls(&h);
    let again = payout(&s, &run_args(&url, &file, &["--production", "--yes"]));
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(mutating_calls(&h), calls, "{again:?}");

    // Status and report say the same.
    let st = payout(&s, &["status"]);
    let words = st.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("done 6 (2 already so"), "{st:?}");
    assert!(
        st.stderr.contains("members 3 before, 4 at the last check"),
        "{st:?}"
    );
    let rep = payout(&s, &["report"]);
    assert_eq!(rep.stdout.lines().count(), 7, "{rep:?}");
    assert!(
        rep.stdout.contains(&format!(
            "4,Group 0,{},{},add,done,0,,already a member: nothing sent",
            lab.groups["Group 0"], p[0]
        )),
        "{rep:?}"
    );
}

#[test]
fn a_missing_group_is_refused_with_zero_mutating_calls_and_a_contradiction_with_its_lines() {
    let lab = lab(1, 0, 3, ProlificConfig::default());
    let s = Scratch::new();
    let url = lab.emu.url();
    let h = lab.emu.handle();
    let p = &lab.people;
    let file = s
        .write(
            "g.csv",
            &format!("participant_id,group\n{},Group 0\n{},Nope\n", p[0], p[1]),
        )
        .display()
        .to_string();
    for extra in [
        &["--dry-run"][..],
        &["--production", "--yes", "--skip-rehearsal"],
    ] {
        let out = payout(&s, &run_args(&url, &file, extra));
        assert_ne!(out.code, 0, "{out:?}");
        assert!(
            out.stderr.contains("\"Nope\" (lines 3)") && out.stderr.contains("--create-missing"),
            "{out:?}"
        );
    }
    // Added and removed in one group (once by name, once by ID): both lines named.
    let id = &lab.groups["Group 0"];
    let file = s
        .write(
            "c.csv",
            &format!(
                "participant_id,group,action\n{},Group 0,add\n{},{id},remove\n",
                p[2], p[2]
            ),
        )
        .display()
        .to_string();
    let out = payout(&s, &run_args(&url, &file, &["--dry-run"]));
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("lines 2 and 3"), "{out:?}");
    assert_eq!(mutating_calls(&h), 0, "nothing was sent");
    assert!(h.group_members(id).unwrap().is_empty());
}

/// `--create-missing`: the creation is journaled before it is sent; a kill -9 right after
/// Prolific applied it, and answers lost after applying, still leave exactly one group.
#[test]
fn a_missing_group_is_created_exactly_once_across_a_kill_and_lost_answers() {
    for seed in 0..4u64 {
        let config = ProlificConfig {
            seed,
            group_faults: FaultRates::uniform(0.0, if seed % 2 == 0 { 1.0 } else { 0.0 }, 0.0),
            latency: Duration::from_millis(2),
            ..ProlificConfig::default()
        };
        let lab = lab(0, 0, 5, config);
        let s = Scratch::new();
        let url = lab.emu.url();
        let h = lab.emu.handle();
        let csv: String = std::iter::once("participant_id\n".to_owned())
            .chain(lab.people.iter().map(|p| format!("{p}\n")))
            .collect();
        let file = s.write("ids.csv", &csv).display().to_string();
        let run = run_args(
            &url,
            &file,
            &[
                "--group",
                "Completed pilot",
                "--create-missing",
                "--production",
                "--yes",
                "--skip-rehearsal",
            ],
        );
        // kill -9 as soon as Prolific has the group.
        let mut cmd = s.payout(&run);
        cmd.env("PROLIFIC_TOKEN", TOKEN);
        kill_9_when(cmd, Duration::from_secs(30), || {
            h.group_id(&lab.ws, "Completed pilot").is_some()
        });
        // Faults off for the rest: the point is the creation.
        h.update_config(|c| c.group_faults = FaultRates::default());
        let out = payout(&s, &run);
        assert_eq!(out.code, 0, "seed {seed}: {out:?}");
        let st = h.stats();
        let creates = st
            .calls
            .get("POST /api/v1/participant-groups/")
            .copied()
            .unwrap_or(0);
        assert_eq!(creates, 1, "seed {seed}: created once: {out:?}");
        let id = h.group_id(&lab.ws, "Completed pilot").expect("the group");
        let all: BTreeSet<String> = lab.people.iter().cloned().collect();
        assert_eq!(h.group_members(&id).unwrap(), all, "seed {seed}");
    }
}

/// The done-when: 2,000 changes over four groups, answers lost after applying, 5xx after
/// applying, drops before applying, two kill -9s, then the same command: every group is
/// exactly what the file asks, over ten seeds; nothing the member list showed done was sent
/// again, and no PATCH.
#[test]
fn two_thousand_changes_under_faults_and_kill_9s_leave_every_group_exactly_as_asked() {
    let seeds: u64 = std::env::var("PAYOUT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    for seed in 0..seeds {
        let config = ProlificConfig {
            seed,
            group_faults: FaultRates::uniform(0.1, 0.1, 0.1),
            read_faults: FaultRates::uniform(0.02, 0.02, 0.02),
            page_size: 50,
            latency: Duration::from_millis(2),
            ..ProlificConfig::default()
        };
        let lab = lab(4, 150, 1200, config);
        let before = memberships(&lab);
        let mut rng = fastrand::Rng::with_seed(seed);
        let (csv, want) = random_file(&lab, &mut rng, 2000, &before);
        let s = Scratch::new();
        let file = s.write("g.csv", &csv).display().to_string();
        let url = lab.emu.url();
        let run = run_args(&url, &file, &["--production", "--yes", "--skip-rehearsal"]);
        let mut kills = 0;
        for attempt in 0.. {
            assert!(attempt < 30, "seed {seed}: no end");
            if kills < 2 {
                let after = last_call(&s.journal());
                let mut cmd = s.payout(&run);
                cmd.env("PROLIFIC_TOKEN", TOKEN);
                if kills == 0 {
                    kill_9_when(cmd, Duration::from_millis(rng.u64(50..1500)), || false);
                } else {
                    // Between a call written "sent" and its answer journaled.
                    kill_9_when(cmd, Duration::from_secs(30), || {
                        call_in_flight(&s.journal(), after)
                    });
                }
                kills += 1;
                continue;
            }
            let out = payout(&s, &run);
            match out.code {
                0 => break,
                4 => {}
                other => panic!("seed {seed}: exit {other}: {out:?}"),
            }
        }
        let got = memberships(&lab);
        for (id, members) in &want {
            let g = &got[id];
            let missing: Vec<_> = members.difference(g).take(3).collect();
            let extra: Vec<_> = g.difference(members).take(3).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "seed {seed}: group {id}: missing {missing:?}, extra {extra:?}"
            );
        }
        let h = lab.emu.handle();
        assert!(h.stats().patch_overwrites.is_empty(), "seed {seed}: PATCH");
        let again = sent_again(&h);
        assert!(
            again.is_empty(),
            "seed {seed}: {} changes applied twice (the member list should have shown them), e.g. {:?}",
            again.len(),
            &again[..again.len().min(3)]
        );
    }
}

/// A call applied whose answer was lost (or answered 5xx) is seen in the member list and never
/// sent again; one dropped before applying is sent again. The mutation that makes a lost answer
/// "pending" without reading the list fails here.
#[test]
fn lost_answers_are_settled_by_the_member_list_never_by_sending_again() {
    let config = ProlificConfig {
        seed: 3,
        group_faults: FaultRates::uniform(0.0, 0.5, 0.3),
        ..ProlificConfig::default()
    };
    let lab = lab(1, 0, 400, config);
    let s = Scratch::new();
    let csv: String = lab.people.iter().map(|p| format!("{p}\n")).collect();
    let file = s.write("ids.txt", &csv).display().to_string();
    let url = lab.emu.url();
    let out = payout(
        &s,
        &run_args(
            &url,
            &file,
            &[
                "--group",
                "Group 0",
                "--production",
                "--yes",
                "--skip-rehearsal",
            ],
        ),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let h = lab.emu.handle();
    let st = h.stats();
    assert!(
        st.lost_after_apply + st.errors_after_apply > 0,
        "the faults happened: {st:?}"
    );
    assert_eq!(st.member_changes.len(), 400, "every participant was added");
    assert!(sent_again(&h).is_empty(), "{:?}", sent_again(&h));
    let all: BTreeSet<String> = lab.people.iter().cloned().collect();
    assert_eq!(h.group_members(&lab.groups["Group 0"]).unwrap(), all);
}

/// The batch's name, as payout printed it.
fn batch_name(out: &Outcome) -> String {
    let i = out.stderr.find("batch groups-").expect("a batch name");
    let rest = &out.stderr[i + "batch ".len()..];
    rest.split([' ', ':', '.']).next().unwrap().to_owned()
}

/// A batch whose every call is dropped ends incomplete and says so; `payout resume` finishes
/// it; another, cancelled, closes what it did not change and is not run again as a new batch.
#[test]
fn a_group_batch_left_unfinished_is_resumed_or_cancelled() {
    let config = ProlificConfig {
        group_faults: FaultRates::uniform(1.0, 0.0, 0.0),
        ..ProlificConfig::default()
    };
    let lab = lab(2, 0, 6, config);
    let s = Scratch::new();
    let url = lab.emu.url();
    let h = lab.emu.handle();
    let ids = |from: usize, to: usize| -> String {
        lab.people[from..to]
            .iter()
            .map(|p| format!("{p}\n"))
            .collect()
    };
    let a = s.write("a.txt", &ids(0, 3)).display().to_string();
    let yes = ["--production", "--yes", "--skip-rehearsal"];
    let mut args = run_args(&url, &a, &["--group", "Group 0"]);
    args.extend_from_slice(&yes);
    let out = payout(&s, &args);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("run the same command again"), "{out:?}");
    let name = batch_name(&out);
    h.update_config(|c| c.group_faults = FaultRates::default());
    // A bare `payout resume` finds it: the latest batch with work left, of any kind.
    let out = payout(&s, &["resume", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains(&format!("resuming {name}")), "{out:?}");
    assert_eq!(h.group_members(&lab.groups["Group 0"]).unwrap().len(), 3);

    h.update_config(|c| c.group_faults = FaultRates::uniform(1.0, 0.0, 0.0));
    let b = s.write("b.txt", &ids(3, 6)).display().to_string();
    let mut args = run_args(&url, &b, &["--group", "Group 1"]);
    args.extend_from_slice(&yes);
    let out = payout(&s, &args);
    assert_eq!(out.code, 4, "{out:?}");
    let name = batch_name(&out);
    let out = payout(&s, &["cancel", &name]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("3 not made are closed"), "{out:?}");
    h.update_config(|c| c.group_faults = FaultRates::default());
    let out = payout(&s, &args);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("was cancelled"), "{out:?}");
    assert!(h.group_members(&lab.groups["Group 1"]).unwrap().is_empty());
}

/// `--block-list NAME`: the plan says it is a block list and that the change applies live.
#[test]
fn a_block_list_is_named_as_one_and_its_change_applies_live() {
    let lab = lab(1, 0, 2, ProlificConfig::default());
    let s = Scratch::new();
    let url = lab.emu.url();
    let ids: String = lab.people.iter().map(|p| format!("{p}\n")).collect();
    let file = s.write("bad.txt", &ids).display().to_string();
    let out = payout(
        &s,
        &run_args(&url, &file, &["--block-list", "Group 0", "--dry-run"]),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("a block list: the change applies at once, live"),
        "{out:?}"
    );
    assert!(out.stderr.contains("2 to add, 0 to remove"), "{out:?}");
}

/// The README's example: no --platform (the header says groups), no token.
#[test]
fn the_example_group_file_runs_on_the_built_in_emulator() {
    let s = Scratch::new();
    let file = format!(
        "{}/examples/prolific-groups.csv",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = s.run(&["run", &file, "--emulator"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("participant groups"), "{out:?}");
    assert!(
        out.stderr.contains("5 done (1 of them already so"),
        "the remove of a non-member is a no-op: {out:?}"
    );
    let out = s.run(&["run", &file, "--emulator", "--create-missing"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("Created group \"Failed attention checks\""),
        "{out:?}"
    );
}

/// An ID typed in upper case is the participant Prolific lists in lower case: a remove of a
/// member so typed removes them (it is not a "no-op"), and an add is done once.
#[test]
fn ids_typed_in_upper_case_are_the_same_participants() {
    let lab = lab(1, 2, 3, ProlificConfig::default());
    let s = Scratch::new();
    let url = lab.emu.url();
    let p = &lab.people;
    let file = s
        .write(
            "g.csv",
            &format!(
                "participant_id,group,action\n{},Group 0,remove\n{},Group 0,add\n",
                p[0].to_uppercase(),
                p[2].to_uppercase()
            ),
        )
        .display()
        .to_string();
    let out = payout(
        &s,
        &run_args(&url, &file, &["--production", "--yes", "--skip-rehearsal"]),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("1 to add, 1 to remove; 0 already so"),
        "{out:?}"
    );
    let got = lab
        .emu
        .handle()
        .group_members(&lab.groups["Group 0"])
        .unwrap();
    let want: BTreeSet<String> = [p[1].clone(), p[2].clone()].into();
    assert_eq!(got, want);
}

/// A group deleted on Prolific while its batch is unfinished: its changes fail with why (not
/// split into one call per participant), and the batch can be cancelled.
#[test]
fn a_group_deleted_mid_batch_fails_its_changes_and_the_batch_can_be_cancelled() {
    let config = ProlificConfig {
        group_faults: FaultRates::uniform(1.0, 0.0, 0.0),
        ..ProlificConfig::default()
    };
    let lab = lab(1, 0, 8, config);
    let s = Scratch::new();
    let url = lab.emu.url();
    let h = lab.emu.handle();
    let ids: String = lab.people.iter().map(|p| format!("{p}\n")).collect();
    let file = s.write("ids.txt", &ids).display().to_string();
    let run = run_args(
        &url,
        &file,
        &[
            "--group",
            "Group 0",
            "--production",
            "--yes",
            "--skip-rehearsal",
        ],
    );
    let out = payout(&s, &run);
    assert_eq!(out.code, 4, "{out:?}");
    let name = batch_name(&out);
    // Deleted on Prolific's side (the emulator's soft delete), faults off.
    let gid = lab.groups["Group 0"].clone();
    h.update_config(|c| c.group_faults = FaultRates::default());
    let del = reqwest_delete(&url, &gid);
    assert_eq!(del, 204);
    let before = mutating_calls(&h);
    let out = payout(&s, &["resume", &name, "--yes"]);
    assert_eq!(out.code, 3, "some failed: {out:?}");
    assert!(out.stderr.contains("8 failed"), "{out:?}");
    assert_eq!(
        mutating_calls(&h),
        before,
        "nothing sent to a deleted group"
    );
    let rep = payout(&s, &["report", &name]);
    assert!(
        rep.stdout
            .contains("the group no longer exists on Prolific"),
        "{rep:?}"
    );
    let out = payout(&s, &["cancel", &name]);
    assert_eq!(out.code, 0, "{out:?}");
}

/// A bonus sheet whose `group` column is the participant's condition is a bonus file.
#[test]
fn a_bonus_sheet_with_a_group_column_is_paid_not_read_as_groups() {
    let s = Scratch::new();
    let file = s
        .write(
            "b.csv",
            "participant_id,group,bonus\n60ffe5c8371090c7041d43f8,control,1.00\n",
        )
        .display()
        .to_string();
    let out = s.run(&["run", &file, "--emulator"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("1 paid"), "{out:?}");
    assert!(!out.stderr.contains("participant groups"), "{out:?}");
}

/// `DELETE /participant-groups/{id}/` as a researcher would in the web app.
fn reqwest_delete(url: &str, group: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .delete(format!("{url}/api/v1/participant-groups/{group}/"))
            .header("Authorization", format!("Token {TOKEN}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// Two unfinished batches must not change the same membership: refused while the first is
/// open, also when its group is still to be created (known by name only).
#[test]
fn a_change_another_unfinished_batch_makes_is_refused_even_for_a_group_to_create() {
    let config = ProlificConfig {
        group_faults: FaultRates::uniform(1.0, 0.0, 0.0),
        ..ProlificConfig::default()
    };
    let lab = lab(0, 0, 2, config);
    let s = Scratch::new();
    let url = lab.emu.url();
    let h = lab.emu.handle();
    let p = &lab.people;
    let a = s
        .write(
            "a.csv",
            &format!("participant_id,group\n{},New group\n", p[0]),
        )
        .display()
        .to_string();
    let yes = [
        "--create-missing",
        "--production",
        "--yes",
        "--skip-rehearsal",
    ];
    let out = payout(&s, &run_args(&url, &a, &yes));
    assert_ne!(out.code, 0, "the creation was dropped: {out:?}");
    assert!(out.stderr.contains("was not confirmed"), "{out:?}");
    let b = s
        .write(
            "b.csv",
            &format!(
                "participant_id,group,action\n{},New group,remove\n{},New group,add\n",
                p[0], p[1]
            ),
        )
        .display()
        .to_string();
    h.update_config(|c| c.group_faults = FaultRates::default());
    let out = payout(&s, &run_args(&url, &b, &yes));
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("1 line of this file change memberships that batch groups-")
            && out.stderr.contains("(lines 2)"),
        "{out:?}"
    );
    assert!(
        h.group_id(&lab.ws, "New group").is_none(),
        "nothing created for b"
    );
    // The first finishes; then the second may run.
    let out = payout(&s, &run_args(&url, &a, &yes));
    assert_eq!(out.code, 0, "{out:?}");
    let out = payout(&s, &run_args(&url, &b, &yes));
    assert_eq!(out.code, 0, "{out:?}");
    let id = h.group_id(&lab.ws, "New group").unwrap();
    assert_eq!(
        h.group_members(&id).unwrap(),
        BTreeSet::from([p[1].clone()])
    );
    assert_eq!(
        h.stats()
            .calls
            .get("POST /api/v1/participant-groups/")
            .copied(),
        Some(2),
        "the dropped creation and the one that made it; b found it by name"
    );
}

/// The same change asked twice — the group once by name, once by its ID, or the line repeated —
/// is one change, and the repeats are said; a contradiction the same way is refused.
#[test]
fn the_same_change_named_by_name_and_by_id_is_one_change() {
    let lab = lab(1, 0, 1, ProlificConfig::default());
    let s = Scratch::new();
    let url = lab.emu.url();
    let (p, id) = (&lab.people[0], &lab.groups["Group 0"]);
    let file = s
        .write(
            "g.csv",
            &format!("participant_id,group\n{p},Group 0\n{p},{id}\n{p},Group 0\n"),
        )
        .display()
        .to_string();
    let out = payout(
        &s,
        &run_args(&url, &file, &["--production", "--yes", "--skip-rehearsal"]),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("2 lines ask the same change as an earlier line (line 3 repeats line 2)"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("New batch groups-") && out.stderr.contains(": 1 change in 1 group"),
        "{out:?}"
    );
    let h = lab.emu.handle();
    assert_eq!(
        h.stats().member_changes.values().sum::<u64>(),
        1,
        "sent once"
    );
}
