//! Prolific bonuses through the real binary against the Prolific emulator on 127.0.0.1 with
//! 100 ms per answer: payout's wall time next to the floor its protocol allows, and its peak
//! resident memory. Measures only; asserts no time.
//!
//! `PROLIFIC_BENCH_ROWS` (10,000), `PROLIFIC_BENCH_LATENCY_MS` (100), chunks of 100. The floor:
//! one money call at a time, so chunks × (set-up + pay) latencies, plus the reads payout's
//! protocol needs — the study's submissions listed once (100 a page) in the checks, and per
//! chunk one baseline read and one read-back of each row's submission, 16 at a time.

mod support;

use std::time::Duration;

use payout::emulator::prolific::{BackgroundProlific, ProlificConfig, ProlificSeed};
use support::*;

fn main() {
    let rows: usize = env_list("PROLIFIC_BENCH_ROWS", &[10_000usize])[0];
    let latency_ms: u64 = env_list("PROLIFIC_BENCH_LATENCY_MS", &[100u64])[0];
    println!("prolific: {}; payout = {PAYOUT}", machine());
    let mut seed = ProlificSeed::new();
    let ws = seed.workspace("Bench", "GBP", 1_000_000_000);
    let study = seed.study(&ws, "Bench study");
    let people = seed.generate(&study, rows);
    let emu = BackgroundProlific::start(
        seed.build(),
        ProlificConfig {
            latency: Duration::from_millis(latency_ms),
            ..ProlificConfig::default()
        },
    )
    .expect("start the Prolific emulator");
    let dir = scratch();
    let file = dir.path().join("prolific.csv");
    let mut csv = String::from("participant_id,amount\n");
    for (i, (p, _)) in people.iter().enumerate() {
        csv.push_str(&format!("{p},{}.{:02}\n", 1 + i % 3, (i * 25) % 100));
    }
    std::fs::write(&file, csv).unwrap();
    let home = prolific_home(dir.path());
    let journal = dir.path().join("journal.sqlite");
    let url = emu.url();
    let base = |more: &[&str]| -> Vec<String> {
        let mut v = prolific_args(&file, &url, &journal, &["--study", &study]);
        v.extend(more.iter().map(|s| s.to_string()));
        v
    };
    let dry = base(&["--dry-run"]);
    let dry = Watched::spawn(&dry.iter().map(String::as_str).collect::<Vec<_>>(), &home).wait();
    println!(
        "\ndry run ({rows} rows, {latency_ms} ms an answer): exit {}, {:.1} s, peak RSS {:.1} MiB",
        dry.code,
        secs(dry.wall),
        mib(dry.max_rss)
    );
    let run = base(&["--production", "--yes"]);
    let ended = Watched::spawn(&run.iter().map(String::as_str).collect::<Vec<_>>(), &home).wait();
    let stats = emu.handle().stats();
    let chunks = rows.div_ceil(100) as f64;
    let lat = latency_ms as f64 / 1000.0;
    let pages = (rows as f64 / 100.0).ceil();
    let money_floor = chunks * 2.0 * lat;
    let reads_floor = pages * lat + chunks * 2.0 * (100f64 / 16.0).ceil() * lat;
    println!(
        "production run: exit {}, {:.1} s wall, {:.1} s CPU, peak RSS {:.1} MiB",
        ended.code,
        secs(ended.wall),
        secs(ended.cpu),
        mib(ended.max_rss)
    );
    println!(
        "  floor: money calls {money_floor:.1} s (chunks {chunks} × set-up + pay) + reads {reads_floor:.1} s = {:.1} s; payout / floor = {:.2}",
        money_floor + reads_floor,
        secs(ended.wall) / (money_floor + reads_floor)
    );
    println!(
        "  emulator: {} set-ups, {} pays accepted, {} double payments; calls {:?}",
        stats.setups,
        stats.pays_accepted,
        stats.double_payments.len(),
        stats.calls
    );
    if ended.code != 0 {
        println!("{}", ended.stderr());
    }
}
