//! What people and programs see: the progress bar, the plan and run summaries, the per-row report.
//!
//! Human output goes to stderr, data (`--json`, reports) to stdout or a file. One place decides
//! whether a bar is drawn.

use std::io::{IsTerminal, Write as _};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::journal::{BatchInfo, ItemRecord, ItemState};
use crate::money::Cents;
use crate::plan::Totals;
use crate::platform::Balance;
use crate::runner::{Event, Reporter, StopReason};

/// How output is shown: decided once from the terminal, `--quiet`, `NO_COLOR` and `CI`.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub quiet: bool,
    pub bar: bool,
}

impl Printer {
    pub fn detect(quiet: bool) -> Printer {
        let tty = std::io::stderr().is_terminal();
        let ci = std::env::var_os("CI").is_some();
        Printer {
            quiet,
            bar: tty && !quiet && !ci,
        }
    }

    /// A line of human output (stderr), unless quiet.
    pub fn say(&self, text: impl AsRef<str>) {
        if !self.quiet {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "{}", text.as_ref());
        }
    }

    /// Something the user must see even with `--quiet` (errors, refusals).
    pub fn warn(&self, text: impl AsRef<str>) {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{}", text.as_ref());
    }
}

pub fn plural(n: u64, word: &str) -> String {
    match (n, word.ends_with('s')) {
        (1, _) => format!("{n} {word}"),
        (_, true) => format!("{n} {word}es"),
        (_, false) => format!("{n} {word}s"),
    }
}

/// The plan as printed before paying.
pub fn plan_text(totals: &Totals, balance: Option<&Balance>) -> String {
    let mut s = format!(
        "  {} to {}\n  bonuses     {:>14}\n  MTurk fee   {:>14}  (20 %, at least $0.01 a bonus)\n  total       {:>14}",
        plural(totals.rows, "bonus"),
        plural(totals.workers, "worker"),
        totals.bonus.to_string(),
        totals.fee.to_string(),
        totals.grand_total().to_string(),
    );
    if let Some(b) = balance {
        s.push_str(&format!("\n  balance     {:>14}", b.available.to_string()));
        if let Some(h) = b.on_hold.filter(|h| h.0 > 0) {
            s.push_str(&format!("  ({h} on hold)"));
        }
    }
    s
}

/// How often a run without a progress bar prints a progress line.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Progress while a batch runs: a bar on a terminal, a line every few seconds otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Without a bar (stderr not a terminal, e.g. a log file), a plain line this often.
    log_every: Option<Duration>,
    total: u64,
    state: Mutex<ProgressState>,
}

struct ProgressState {
    done: u64,
    paid: Cents,
    failed: u64,
    retries: u64,
    rate: f64,
    last_log: Instant,
}

impl Progress {
    pub fn new(printer: Printer, total: u64, rate: f64) -> Progress {
        let bar = printer.bar.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} · {msg} · {per_sec} · {elapsed_precise} elapsed, ETA {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let log_every = (!printer.bar && !printer.quiet).then_some(LOG_EVERY);
        let p = Progress {
            bar,
            log_every,
            total,
            state: Mutex::new(ProgressState {
                done: 0,
                paid: Cents::ZERO,
                failed: 0,
                retries: 0,
                rate,
                last_log: Instant::now(),
            }),
        };
        p.refresh();
        p
    }

    fn refresh(&self) {
        if let Some(every) = self.log_every {
            let mut s = self.state.lock().expect("progress lock");
            if s.last_log.elapsed() >= every {
                s.last_log = Instant::now();
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "progress: {}/{} done · {} paid · {} failed · {} retries",
                    s.done,
                    self.total,
                    s.paid,
                    s.failed,
                    s.retries
                );
            }
        }
        if let Some(bar) = &self.bar {
            let s = self.state.lock().expect("progress lock");
            bar.set_message(format!(
                "{} paid · {} failed · {} retries · pace ≤{:.1}/s",
                s.paid, s.failed, s.retries, s.rate
            ));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn println(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{text}");
            }
        }
    }
}

impl Reporter for Progress {
    fn event(&self, e: &Event) {
        {
            let mut s = self.state.lock().expect("progress lock");
            match e {
                Event::Paid { amount, .. } => {
                    s.paid += *amount;
                    s.done += 1;
                }
                Event::Failed { .. } => {
                    s.failed += 1;
                    s.done += 1;
                }
                Event::Retrying { .. } => s.retries += 1,
                Event::RateChanged { rate } => s.rate = *rate,
                Event::LeftOpen { .. } | Event::Stopping { .. } => {}
            }
        }
        match e {
            Event::Paid { .. } | Event::Failed { .. } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
            }
            Event::Stopping {
                reason: StopReason::Systemic(_, m),
            } => self.println(format!("stopping: {m}")),
            _ => {}
        }
        self.refresh();
    }
}

/// A batch's state as `status` and the end of a run show it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub batch: String,
    pub target: String,
    pub source: String,
    pub rows: u64,
    pub paid: u64,
    pub paid_cents: u64,
    pub paid_fee_cents: u64,
    pub skipped: u64,
    pub failed: u64,
    pub pending: u64,
    pub pending_cents: u64,
    pub unknown: u64,
    pub failures: Vec<RowProblem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowProblem {
    pub line: u64,
    pub worker_id: String,
    pub assignment_id: String,
    pub state: String,
    pub message: String,
}

impl Summary {
    pub fn new(batch: &BatchInfo, items: &[ItemRecord]) -> Summary {
        let failures = items
            .iter()
            .filter(|i| i.state == ItemState::Failed || (i.state.is_open() && i.error.is_some()))
            .map(|i| RowProblem {
                line: i.line,
                worker_id: i.key.worker.to_string(),
                assignment_id: i.key.assignment.to_string(),
                state: i.state.as_str().into(),
                message: i
                    .note
                    .clone()
                    .filter(|_| i.state == ItemState::Failed)
                    .or_else(|| i.error.clone())
                    .unwrap_or_default(),
            })
            .collect();
        let count =
            |pred: fn(ItemState) -> bool| items.iter().filter(|i| pred(i.state)).count() as u64;
        let money = |pred: fn(ItemState) -> bool| -> Cents {
            items
                .iter()
                .filter(|i| pred(i.state))
                .map(|i| i.key.amount)
                .sum()
        };
        let paid: fn(ItemState) -> bool = |s| s == ItemState::Paid;
        let paid_fee: Cents = items
            .iter()
            .filter(|i| paid(i.state))
            .map(|i| i.key.amount.bonus_fee())
            .sum();
        Summary {
            batch: batch.name.clone(),
            target: batch.target.as_str().into(),
            source: batch.source.clone(),
            rows: items.len() as u64,
            paid: count(paid),
            paid_cents: money(paid).0,
            paid_fee_cents: paid_fee.0,
            skipped: count(|s| s == ItemState::Skipped),
            failed: count(|s| s == ItemState::Failed),
            pending: count(ItemState::is_open),
            pending_cents: money(ItemState::is_open).0,
            unknown: count(|s| matches!(s, ItemState::Unknown | ItemState::InFlight)),
            failures,
        }
    }

    pub fn text(&self) -> String {
        let mut s = format!(
            "  paid     {:>6}  {} (+ {} fee)\n  skipped  {:>6}\n  failed   {:>6}\n  pending  {:>6}  {}",
            self.paid,
            Cents(self.paid_cents),
            Cents(self.paid_fee_cents),
            self.skipped,
            self.failed,
            self.pending,
            Cents(self.pending_cents),
        );
        if self.unknown > 0 {
            s.push_str(&format!(
                " ({} sent without an answer: checked with MTurk before anything is sent again)",
                self.unknown
            ));
        }
        let failed: Vec<&RowProblem> = self
            .failures
            .iter()
            .filter(|f| f.state == "failed")
            .collect();
        if !failed.is_empty() {
            s.push_str("\n\nFailed rows (MTurk's answer):");
            for f in failed.iter().take(20) {
                s.push_str(&format!(
                    "\n  line {}: worker {}, assignment {}: {}",
                    f.line, f.worker_id, f.assignment_id, f.message
                ));
            }
            if failed.len() > 20 {
                s.push_str(&format!(
                    "\n  … and {} more (payout report {})",
                    failed.len() - 20,
                    self.batch
                ));
            }
        }
        s
    }
}

/// One line of the per-row report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub line: u64,
    pub worker_id: String,
    pub assignment_id: String,
    pub amount: String,
    pub fee: String,
    pub reason: String,
    pub outcome: String,
    pub attempts: u32,
    pub error: String,
    pub note: String,
    pub request_token: String,
    pub first_sent: String,
    pub finished: String,
}

fn rfc3339(ms: Option<i64>) -> String {
    use aws_sdk_mturk::primitives::{DateTime, DateTimeFormat};
    ms.and_then(|ms| DateTime::from_millis(ms).fmt(DateTimeFormat::DateTime).ok())
        .unwrap_or_default()
}

pub fn report_rows(items: &[ItemRecord]) -> Vec<ReportRow> {
    items
        .iter()
        .map(|i| ReportRow {
            line: i.line,
            worker_id: i.key.worker.to_string(),
            assignment_id: i.key.assignment.to_string(),
            amount: i.key.amount.to_api_string(),
            fee: i.key.amount.bonus_fee().to_api_string(),
            reason: i.key.reason.clone(),
            outcome: i.state.as_str().into(),
            attempts: i.attempts,
            error: i.error.clone().unwrap_or_default(),
            note: i.note.clone().unwrap_or_default(),
            request_token: i.token.clone(),
            first_sent: rfc3339(i.first_sent_ms),
            finished: rfc3339(i.finished_ms),
        })
        .collect()
}

/// Writes the per-row report as CSV.
pub fn write_csv(rows: &[ReportRow], out: impl std::io::Write) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    for r in rows {
        w.serialize(r).map_err(std::io::Error::other)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_text_shows_totals_fee_and_balance() {
        let t = Totals {
            rows: 2,
            workers: 1,
            bonus: Cents(150),
            fee: Cents(30),
        };
        let text = plan_text(
            &t,
            Some(&Balance {
                available: Cents(1_000_000),
                on_hold: None,
            }),
        );
        assert!(text.contains("2 bonuses to 1 worker"), "{text}");
        assert!(text.contains("$1.50") && text.contains("$0.30") && text.contains("$1.80"));
        assert!(text.contains("$10,000.00"));
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(None), "");
    }
}
