//! Shared by the benchmarks that drive the real `payout` binary: CSV files written to disk, an
//! emulator on 127.0.0.1, and a run watched from outside (stderr lines with their times, resident
//! memory from /proc, the emulator's first SendBonus). Measures only; asserts no time.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use payout::emulator::{BackgroundEmulator, EmulatorConfig, EmulatorHandle};
use payout::money::Cents;

/// The binary cargo built for the bench profile (release settings).
pub const PAYOUT: &str = env!("CARGO_BIN_EXE_payout");

/// The binary the benches run: `PAYOUT_BIN` if set (a copy of an earlier build, to measure
/// before and after with the same bench), else [`PAYOUT`].
pub fn payout_bin() -> String {
    std::env::var("PAYOUT_BIN").unwrap_or_else(|_| PAYOUT.to_owned())
}

/// A bonus CSV of `n` rows, one worker and one assignment per row (the most a planner and a
/// duplicate check must remember), written as a stream.
pub fn write_csv(path: &Path, n: usize) {
    let file = std::fs::File::create(path).expect("create the CSV");
    let mut w = BufWriter::with_capacity(1 << 20, file);
    writeln!(w, "WorkerId,AssignmentId,BonusAmount,Reason").expect("write");
    for i in 0..n {
        writeln!(
            w,
            "A{:012},3ASSIGN{:023},{}.{:02},\"Bonus for round {}, thanks!\"",
            i,
            i,
            i % 5,
            1 + i % 99,
            i % 7
        )
        .expect("write");
    }
    w.flush().expect("flush the CSV");
}

/// `payout run FILE --emulator --endpoint-url URL --journal JOURNAL` and then `more`.
pub fn run_args(file: &Path, url: &str, journal: &Path, more: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["run", path_str(file), "--emulator", "--endpoint-url", url]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--journal".to_string(), path_str(journal).to_string()]);
    args.extend(more.iter().map(|s| s.to_string()));
    args
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

/// An emulator with money for any run, on its own runtime.
pub fn emulator(config: EmulatorConfig) -> BackgroundEmulator {
    BackgroundEmulator::start(EmulatorConfig {
        // A billion dollars: any run here, and still a balance MTurk could answer.
        balance: Cents(100_000_000_000),
        ..config
    })
    .expect("the emulator starts")
}

pub fn send_bonus_calls(h: &EmulatorHandle) -> u64 {
    h.stats().calls.get("SendBonus").copied().unwrap_or(0)
}

/// The machine as a figure needs it: cores and load average right now.
pub fn machine() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "{} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.join(" ")
    )
}

/// One memory reading of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    pub at: Duration,
    /// VmRSS, KiB.
    pub rss: u64,
    /// VmHWM (peak resident so far), KiB.
    pub hwm: u64,
}

pub fn read_mem(pid: u32, at: Duration) -> Option<Mem> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some(Mem {
        at,
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:")?,
    })
}

/// A `payout` process under watch.
pub struct Watched {
    pub pid: u32,
    pub started: Instant,
    lines: Arc<Mutex<Vec<(Duration, String)>>>,
    mem: Arc<Mutex<Vec<Mem>>>,
    reader: Option<JoinHandle<()>>,
    sampler: Option<JoinHandle<()>>,
    done: Arc<std::sync::atomic::AtomicBool>,
}

/// How a watched run ended.
#[derive(Debug)]
pub struct Ended {
    pub code: i32,
    pub wall: Duration,
    /// Peak resident set of the whole run from `wait4` (KiB).
    pub max_rss: u64,
    /// CPU time of the run (user + system), from `wait4`.
    pub cpu: Duration,
    pub lines: Vec<(Duration, String)>,
    pub mem: Vec<Mem>,
}

impl Ended {
    /// When the first stderr line containing `needle` came.
    pub fn line_at(&self, needle: &str) -> Option<Duration> {
        self.lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
    }

    pub fn stderr(&self) -> String {
        self.lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The highest VmRSS sampled in `from..to`, KiB.
    pub fn max_rss_between(&self, from: Duration, to: Duration) -> u64 {
        self.mem
            .iter()
            .filter(|m| m.at >= from && m.at <= to)
            .map(|m| m.rss)
            .max()
            .unwrap_or(0)
    }
}

impl Watched {
    /// Starts `payout ARGS` in a private HOME with dummy AWS credentials; stderr is read line
    /// by line and memory sampled every 20 ms.
    pub fn spawn(args: &[&str], home: &Path) -> Watched {
        let started = Instant::now();
        let mut child = Command::new(payout_bin())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("AWS_ACCESS_KEY_ID", "AKIDPAYOUTBENCH")
            .env("AWS_SECRET_ACCESS_KEY", "payout-bench")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn payout");
        let pid = child.id();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    lines.lock().unwrap().push((started.elapsed(), line));
                }
            })
        };
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mem = Arc::new(Mutex::new(Vec::new()));
        let sampler = {
            let (mem, done) = (mem.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    match read_mem(pid, started.elapsed()) {
                        Some(m) => mem.lock().unwrap().push(m),
                        None => break,
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        // The child is reaped with wait4 (for its peak RSS), not through `Child`.
        std::mem::forget(child);
        Watched {
            pid,
            started,
            lines,
            mem,
            reader: Some(reader),
            sampler: Some(sampler),
            done,
        }
    }

    pub fn mem_now(&self) -> Option<Mem> {
        read_mem(self.pid, self.started.elapsed())
    }

    /// Ctrl-C: payout stops dispatching and lets the calls under way finish.
    pub fn interrupt(&self) {
        // SAFETY: `kill` with a pid this process spawned and has not reaped yet.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGINT);
        }
    }

    pub fn wait(mut self) -> Ended {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child; both out-pointers are valid for the call.
        let r = unsafe { libc::wait4(self.pid as libc::pid_t, &mut status, 0, &mut usage) };
        let wall = self.started.elapsed();
        assert_eq!(r, self.pid as libc::pid_t, "wait4 reaps payout");
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        if let Some(s) = self.sampler.take() {
            let _ = s.join();
        }
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        };
        Ended {
            code,
            wall,
            max_rss: usage.ru_maxrss as u64,
            cpu: cpu_time(&usage),
            lines: std::mem::take(&mut *self.lines.lock().unwrap()),
            mem: std::mem::take(&mut *self.mem.lock().unwrap()),
        }
    }
}

/// The first SendBonus of a run, as the emulator saw it.
#[derive(Debug, Clone, Copy)]
pub struct FirstCall {
    /// Since the process was started.
    pub at: Duration,
    /// The emulator's clock (ms since the Unix epoch), as payments' `time_ms`.
    pub clock_ms: u64,
    /// The process's memory right then.
    pub mem: Option<Mem>,
}

/// Waits (in a thread) for the emulator's first SendBonus; answers when it came and the
/// process's memory at that moment, or `None` if the process ended (or `timeout` passed) first.
pub fn first_send_bonus(
    h: &EmulatorHandle,
    pid: u32,
    started: Instant,
    timeout: Duration,
) -> JoinHandle<Option<FirstCall>> {
    let h = h.clone();
    let before = send_bonus_calls(&h);
    std::thread::spawn(move || {
        while started.elapsed() < timeout {
            let seen = h.wait_for(Duration::from_millis(100), |s| {
                s.calls.get("SendBonus").copied().unwrap_or(0) > before
            });
            if seen {
                let at = started.elapsed();
                return Some(FirstCall {
                    at,
                    clock_ms: h.now_ms(),
                    mem: read_mem(pid, at),
                });
            }
            // A process that has ended (a zombie until reaped) has no memory to show.
            read_mem(pid, started.elapsed())?;
        }
        None
    })
}

/// A scratch directory for files that may be large (`BENCH_DIR`, or the system's temp dir).
/// A home for payout holding the Prolific emulator's token, stored as `payout setup --prolific`
/// stores it.
#[allow(dead_code)]
pub fn prolific_home(dir: &Path) -> std::path::PathBuf {
    let home = dir.join("home");
    let token = home.join(".config/payout/prolific-token");
    std::fs::create_dir_all(token.parent().unwrap()).unwrap();
    std::fs::write(&token, payout::emulator::prolific::DEFAULT_TOKEN).unwrap();
    home
}

/// `payout run FILE --platform prolific --endpoint-url URL --testing-endpoint --journal J`,
/// then `more`.
#[allow(dead_code)]
pub fn prolific_args(file: &Path, url: &str, journal: &Path, more: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "run",
        file.to_str().unwrap(),
        "--platform",
        "prolific",
        "--endpoint-url",
        url,
        "--testing-endpoint",
        "--journal",
        journal.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(more.iter().map(|s| s.to_string()));
    v
}

pub fn scratch() -> tempfile::TempDir {
    match std::env::var_os("BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(PathBuf::from(d)).expect("temp dir in BENCH_DIR"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}

/// `"10,20"` → `[10, 20]`; the default when unset or empty.
pub fn env_list<T: std::str::FromStr + Clone>(name: &str, default: &[T]) -> Vec<T> {
    let parsed: Vec<T> = std::env::var(name)
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_default();
    if parsed.is_empty() {
        default.to_vec()
    } else {
        parsed
    }
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn cpu_time(u: &libc::rusage) -> Duration {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU time this process (the bench, and the emulator in it) has used so far.
pub fn own_cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value for getrusage to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer for the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    cpu_time(&usage)
}
