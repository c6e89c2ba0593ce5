//! Prolific participant groups through the real binary against the Prolific emulator on
//! 127.0.0.1 with 100 ms per answer: payout's wall time next to the floor its protocol allows,
//! and its peak resident memory. Measures only; asserts no time.
//!
//! `GROUPS_BENCH_ADDS` (10,000) participants added to a group that holds `GROUPS_BENCH_MEMBERS`
//! (5,000), a quarter of whom the file removes; `GROUPS_BENCH_LATENCY_MS` (100). The floor: the
//! member list read (100 a page) by the checks, by the first round and by the verifying round,
//! plus the calls of 100 participants, 4 at a time.

mod support;

use std::time::Duration;

use payout::emulator::prolific::{BackgroundProlific, ProlificConfig, ProlificSeed};
use support::*;

fn main() {
    let adds: usize = env_list("GROUPS_BENCH_ADDS", &[10_000usize])[0];
    let members: usize = env_list("GROUPS_BENCH_MEMBERS", &[5_000usize])[0];
    let latency_ms: u64 = env_list("GROUPS_BENCH_LATENCY_MS", &[100u64])[0];
    println!("groups: {}; payout = {PAYOUT}", machine());
    let mut seed = ProlificSeed::new();
    let ws = seed.workspace("Bench", "GBP", 1_000_000);
    let existing: Vec<String> = (0..members).map(|_| seed.participant()).collect();
    let new: Vec<String> = (0..adds).map(|_| seed.participant()).collect();
    let group = seed.group(&ws, "Completed study 1", &existing);
    let emu = BackgroundProlific::start(
        seed.build(),
        ProlificConfig {
            latency: Duration::from_millis(latency_ms),
            ..ProlificConfig::default()
        },
    )
    .expect("start the Prolific emulator");
    let dir = scratch();
    let file = dir.path().join("groups.csv");
    let removes = members / 4;
    let mut csv = String::from("participant_id,group,action\n");
    for p in &new {
        csv.push_str(&format!("{p},Completed study 1,add\n"));
    }
    for p in &existing[..removes] {
        csv.push_str(&format!("{p},Completed study 1,remove\n"));
    }
    std::fs::write(&file, csv).unwrap();
    let home = prolific_home(dir.path());
    let journal = dir.path().join("journal.sqlite");
    let url = emu.url();
    let base = |more: &[&str]| prolific_args(&file, &url, &journal, more);
    let changes = adds + removes;
    let dry = base(&["--dry-run"]);
    let dry = Watched::spawn(&dry.iter().map(String::as_str).collect::<Vec<_>>(), &home).wait();
    println!(
        "\ndry run ({changes} changes, {latency_ms} ms an answer): exit {}, {:.1} s, peak RSS {:.1} MiB",
        dry.code,
        secs(dry.wall),
        mib(dry.max_rss)
    );
    let run = base(&["--production", "--yes"]);
    let ended = Watched::spawn(&run.iter().map(String::as_str).collect::<Vec<_>>(), &home).wait();
    let lat = latency_ms as f64 / 1000.0;
    let pages = |n: usize| (n as f64 / 100.0).ceil().max(1.0);
    let after = members + adds - removes;
    let list_floor = (2.0 * pages(members) + pages(after)) * lat;
    let calls = (changes as f64 / 100.0).ceil();
    let call_floor = (calls / 4.0).ceil() * lat;
    println!(
        "production run: exit {}, {:.1} s wall, {:.1} s CPU, peak RSS {:.1} MiB",
        ended.code,
        secs(ended.wall),
        secs(ended.cpu),
        mib(ended.max_rss)
    );
    println!(
        "  floor: member lists {list_floor:.1} s (checks, first round, verification) + calls {call_floor:.1} s ({calls} calls of up to 100, 4 at a time) = {:.1} s; payout / floor = {:.2}",
        list_floor + call_floor,
        secs(ended.wall) / (list_floor + call_floor)
    );
    let h = emu.handle();
    let got = h.group_members(&group).unwrap_or_default();
    let stats = h.stats();
    let twice = stats.member_changes.values().filter(|n| **n > 1).count();
    println!(
        "  emulator: {} members after (want {after}); {} changes applied, {twice} applied twice; {} PATCH overwrites; calls {:?}",
        got.len(),
        stats.member_changes.len(),
        stats.patch_overwrites.len(),
        stats.calls
    );
    if ended.code != 0 {
        println!("{}", ended.stderr());
    }
}
