//! Large files through the real binary: validation, planning and import of 100,000 and 1,000,000
//! rows (time to the first SendBonus, peak resident memory), memory while paying, and the time
//! to the first call of `payout resume` and of the same `payout run` again on that batch.
//!
//! For each size N (`SCALE_BENCH_ROWS=100000,1000000`, the default) against an emulator on
//! 127.0.0.1 with no latency and no limit:
//!
//! 1. `payout run FILE --emulator --endpoint-url URL --journal J --rate 100000 --concurrency 32`
//!    on a fresh journal: when the banner comes (the whole file validated and planned), when
//!    "New batch" comes (imported), when the emulator receives the first SendBonus (after the
//!    account check), and VmHWM then; it pays `SCALE_BENCH_PAY` bonuses (5,000) and is stopped
//!    with Ctrl-C; VmRSS while paying and the peak of the whole run (`wait4`).
//! 2. `payout resume --journal J` at once, with nearly every row still open (the common case:
//!    a big batch stopped near its start): time to its first SendBonus, peak RSS; stopped with
//!    Ctrl-C after `SCALE_BENCH_PAY` more.
//! 3. All but 10 open items are marked done with SQL (never sent; the ledger only needs them
//!    closed), then `payout resume --journal J`: time to its first SendBonus.
//! 4. 10 of those items are opened again, then the command of step 1 again: time to its first
//!    SendBonus, and to its banner (its own validation).
//!
//! Before step 1, and again after step 4 (the batch then in the journal), the same command with
//! `--dry-run`: its wall time and peak RSS (`wait4`). It checks the first 20,000 operations
//! with the emulator, read-only.
//!
//! The files (`BENCH_DIR`, else the temp dir) take about 80 MB of CSV and 450 MB of journal per
//! million rows. One million takes about two minutes on 2 vCPUs. Measures only.

mod support;

use std::path::Path;
use std::time::Duration;

use payout::emulator::EmulatorConfig;
use rusqlite::params;
use support::*;

const FIRST_CALL_TIMEOUT: Duration = Duration::from_secs(1800);

fn main() {
    let sizes: Vec<usize> = env_list("SCALE_BENCH_ROWS", &[100_000, 1_000_000]);
    let pay: u64 = env_list("SCALE_BENCH_PAY", &[5000u64])[0];
    println!("scale: {}; payout = {}", machine(), payout_bin());
    for n in sizes {
        scale(n, pay);
    }
}

fn scale(n: usize, pay: u64) {
    let dir = scratch();
    let file = dir.path().join(format!("b{n}.csv"));
    let journal = dir.path().join("journal.sqlite");
    write_csv(&file, n);
    let emu = emulator(EmulatorConfig::default());
    let h = emu.handle();
    let url = emu.url();
    let run_args = run_args(
        &file,
        &url,
        &journal,
        &["--rate", "100000", "--concurrency", "32"],
    );
    let run_args: Vec<&str> = run_args.iter().map(String::as_str).collect();

    println!("\n{n} rows ({}):", machine());
    // 0. A dry run before anything is journaled.
    dry_run(&run_args, dir.path(), "no journal yet");

    // 1. A fresh journal: validate, plan, import, account check, pay some, Ctrl-C.
    let run = Watched::spawn(&run_args, dir.path());
    let first = first_send_bonus(&h, run.pid, run.started, FIRST_CALL_TIMEOUT);
    let Some(first) = first.join().expect("watcher") else {
        let end = run.wait();
        println!(
            "  payout ended before its first SendBonus:\n{}",
            end.stderr()
        );
        return;
    };
    let reached = h.wait_for(Duration::from_secs(600), |s| s.payments >= pay);
    let paying = run.mem_now();
    run.interrupt();
    let end = run.wait();
    let banner = end.line_at("operations").unwrap_or_default();
    let imported = end.line_at("New batch").unwrap_or_default();
    let stopped = paying.map_or(end.wall, |m| m.at);
    println!(
        "  run:    validated + planned in {:.2} s ({:.0} rows/s incl. start-up), imported in {:.2} s, first SendBonus at {:.2} s",
        secs(banner),
        n as f64 / secs(banner),
        secs(imported.saturating_sub(banner)),
        secs(first.at)
    );
    println!(
        "          peak RSS up to the first call {:.1} MiB (VmHWM); while paying {:.1} MiB max VmRSS ({} paid{}); whole run {:.1} MiB (wait4); exit {}",
        mib(first.mem.map_or(0, |m| m.hwm)),
        mib(end.max_rss_between(first.at, stopped)),
        h.stats().payments,
        if reached { "" } else { ", fewer than asked" },
        mib(end.max_rss),
        end.code
    );
    let size = std::fs::metadata(&journal).map_or(0, |m| m.len());
    println!("          journal {:.0} MiB", size as f64 / 1048576.0);

    // 2. Resume at once, nearly everything open.
    let open = open_count(&journal);
    let resume_args = ["resume", "--journal", journal.to_str().unwrap()];
    let before = h.stats().payments;
    let run = Watched::spawn(&resume_args, dir.path());
    let first = first_send_bonus(&h, run.pid, run.started, FIRST_CALL_TIMEOUT);
    let first = first.join().expect("watcher");
    if first.is_some() {
        h.wait_for(Duration::from_secs(600), |s| s.payments >= before + pay);
        run.interrupt();
    }
    let end = run.wait();
    println!(
        "  resume: {open} open of {n}: first SendBonus at {}, \"To do now\" at {}, exit {} after {:.2} s ({} paid), peak RSS {:.1} MiB",
        first.map_or("never".into(), |f| format!("{:.3} s", secs(f.at))),
        end.line_at("To do now")
            .map_or("-".into(), |t| format!("{:.3} s", secs(t))),
        end.code,
        secs(end.wall),
        h.stats().payments - before,
        mib(end.max_rss)
    );
    if first.is_none() {
        println!("{}", end.stderr());
    }

    // 3. Resume with 10 left.
    let left = leave_open(&journal, 10);
    let before = h.stats().payments;
    let run = Watched::spawn(&resume_args, dir.path());
    let first = first_send_bonus(&h, run.pid, run.started, FIRST_CALL_TIMEOUT);
    let first = first.join().expect("watcher");
    let end = run.wait();
    println!(
        "  resume: {left} open of {n}: first SendBonus at {}, exit {} after {:.2} s ({} paid), peak RSS {:.1} MiB",
        first.map_or("never".into(), |f| format!("{:.3} s", secs(f.at))),
        end.code,
        secs(end.wall),
        h.stats().payments - before,
        mib(end.max_rss)
    );
    if first.is_none() {
        println!("{}", end.stderr());
    }

    // 4. The same command again, with 10 open.
    let reopened = reopen(&journal, 10);
    let run = Watched::spawn(&run_args, dir.path());
    let first = first_send_bonus(&h, run.pid, run.started, FIRST_CALL_TIMEOUT);
    let first = first.join().expect("watcher");
    let end = run.wait();
    let banner = end.line_at("operations").unwrap_or_default();
    println!(
        "  again:  {reopened} open: banner (validation) at {:.2} s, first SendBonus at {} ({} after the banner), exit {} after {:.2} s, peak RSS {:.1} MiB",
        secs(banner),
        first.map_or("never".into(), |f| format!("{:.2} s", secs(f.at))),
        first.map_or("-".into(), |f| format!(
            "{:.2} s",
            secs(f.at.saturating_sub(banner))
        )),
        end.code,
        secs(end.wall),
        mib(end.max_rss)
    );
    if first.is_none() || !end.stderr().contains("Continuing batch") {
        println!("{}", end.stderr());
    }
    // 5. A dry run of the file whose batch is in the journal.
    dry_run(&run_args, dir.path(), "batch in the journal");
    drop(emu);
}

/// `run_args` with `--dry-run`: wall time and peak RSS of the whole process.
fn dry_run(run_args: &[&str], home: &Path, when: &str) {
    let mut args = run_args.to_vec();
    args.push("--dry-run");
    let end = Watched::spawn(&args, home).wait();
    let banner = end.line_at("operations").unwrap_or_default();
    println!(
        "  dry run ({when}): banner at {:.2} s, exit {} after {:.2} s, peak RSS {:.1} MiB (wait4)",
        secs(banner),
        end.code,
        secs(end.wall),
        mib(end.max_rss)
    );
    if end.code != 0 {
        println!("{}", end.stderr());
    }
}

/// Open items in the journal.
fn open_count(journal: &Path) -> u64 {
    let c = rusqlite::Connection::open(journal).expect("open the journal");
    c.query_row(
        "SELECT COUNT(*) FROM items WHERE state IN ('pending', 'in_flight', 'unknown')",
        [],
        |r| r.get::<_, i64>(0),
    )
    .expect("count open") as u64
}

/// Marks every open item but the last `keep` done (as if paid: they are never sent), the way a
/// nearly finished batch looks. Answers how many stay open.
fn leave_open(journal: &Path, keep: u32) -> u64 {
    let c = rusqlite::Connection::open(journal).expect("open the journal");
    let open = "state IN ('pending', 'in_flight', 'unknown')";
    let last: i64 = c
        .query_row(
            &format!("SELECT seq FROM items WHERE {open} ORDER BY seq DESC LIMIT 1 OFFSET ?1"),
            params![keep - 1],
            |r| r.get(0),
        )
        .expect("enough open items");
    c.execute(
        &format!(
            "UPDATE items SET state = 'done', finished_ms = 0,
             note = 'marked done by benches/scale.rs' WHERE {open} AND state = 'pending' AND seq < ?1"
        ),
        params![last],
    )
    .expect("mark done");
    c.query_row(
        &format!("SELECT COUNT(*) FROM items WHERE {open}"),
        [],
        |r| r.get::<_, i64>(0),
    )
    .expect("count open") as u64
}

/// Opens again `n` items that were marked done without being sent.
fn reopen(journal: &Path, n: u32) -> u64 {
    let c = rusqlite::Connection::open(journal).expect("open the journal");
    c.execute(
        "UPDATE items SET state = 'pending', finished_ms = NULL, note = NULL
         WHERE seq IN (SELECT seq FROM items WHERE state = 'done' AND attempts = 0
                       ORDER BY seq DESC LIMIT ?1)",
        params![n],
    )
    .expect("reopen") as u64
}
