//! Progress while a batch runs: a bar on a terminal, a line every few seconds otherwise — and
//! while calls are failing, what fails, how often, and when the next try is.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Printer;
use crate::engine::{Event, Reporter, StopReason};
use crate::money::Cents;

/// How often a run without a progress bar prints a progress line.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// How long after the last failure the progress line still mentions it.
const FAILING_FOR: Duration = Duration::from_secs(15);

pub struct Progress {
    bar: Option<ProgressBar>,
    /// Without a bar (stderr not a terminal, e.g. a log file), a plain line this often.
    log_every: Option<Duration>,
    total: u64,
    started: Instant,
    state: Mutex<State>,
}

struct State {
    done: u64,
    paid: Cents,
    failed: u64,
    retries: u64,
    throttled: u64,
    rate: f64,
    limit: Option<f64>,
    last_log: Instant,
    /// The last failed call that will be retried: what, and when the next try is.
    failing: Option<(String, Instant)>,
    verifying: Option<u64>,
}

impl Progress {
    pub fn new(printer: Printer, total: u64, rate: f64) -> Progress {
        let bar = printer.bar.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{bar:24} {pos}/{len} {elapsed_precise} {wide_msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let log_every = (!printer.bar && !printer.quiet).then_some(LOG_EVERY);
        let now = Instant::now();
        let p = Progress {
            bar,
            log_every,
            total,
            started: now,
            state: Mutex::new(State {
                done: 0,
                paid: Cents::ZERO,
                failed: 0,
                retries: 0,
                throttled: 0,
                rate,
                limit: None,
                last_log: now,
                failing: None,
                verifying: None,
            }),
        };
        p.refresh(false);
        p
    }

    /// The line shown: counts, money, pace, and what is failing if anything is.
    fn line(&self, s: &State) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let mut line = String::new();
        if s.paid > Cents::ZERO {
            line.push_str(&format!("{} paid · ", s.paid));
        }
        line.push_str(&format!(
            "{} failed · {:.1}/s (pace {:.1}/s",
            s.failed,
            s.done as f64 / secs,
            s.rate
        ));
        match s.limit {
            Some(l) => line.push_str(&format!(", limit ≈{l:.1}/s)")),
            None => line.push(')'),
        }
        // Being throttled now and then is how the pace finds the limit: counted, not alarming.
        if s.throttled > 0 {
            line.push_str(&format!(" · {} throttled", s.throttled));
        }
        if let Some(groups) = s.verifying.filter(|_| s.done == 0) {
            line.push_str(&format!(" · verifying {groups} groups sent before"));
        }
        if let Some((what, next)) = &s.failing
            && next.elapsed() < FAILING_FOR
        {
            let wait = next.saturating_duration_since(Instant::now());
            line.push_str(&format!(
                " · failing: {what} · {} retries · next in {:.1}s",
                s.retries,
                wait.as_secs_f64()
            ));
        }
        line
    }

    fn refresh(&self, force_log: bool) {
        let mut s = self.state.lock().expect("progress lock");
        if let Some(every) = self.log_every
            && (force_log || s.last_log.elapsed() >= every)
        {
            s.last_log = Instant::now();
            let text = format!("progress: {}/{} · {}", s.done, self.total, self.line(&s));
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
        if let Some(bar) = &self.bar {
            bar.set_position(s.done);
            bar.set_message(self.line(&s));
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

/// The first words of an error, enough to say what fails on one line.
fn first_words(message: &str) -> String {
    super::short(message.lines().next().unwrap_or(""), 60)
}

impl Reporter for Progress {
    fn event(&self, e: &Event) {
        let mut first_failure = false;
        {
            let mut s = self.state.lock().expect("progress lock");
            match e {
                Event::Done { amount, .. } => {
                    s.paid += amount.unwrap_or(Cents::ZERO);
                    s.done += 1;
                }
                Event::Failed { .. } => {
                    s.failed += 1;
                    s.done += 1;
                }
                Event::Retrying {
                    class: crate::platform::ErrorClass::Throttled,
                    ..
                } => s.throttled += 1,
                Event::Retrying { message, delay, .. } => {
                    first_failure = s.failing.is_none();
                    s.retries += 1;
                    s.failing = Some((first_words(message), Instant::now() + *delay));
                }
                Event::RateChanged { rate, limit } => {
                    s.rate = *rate;
                    s.limit = *limit;
                }
                Event::Verifying { groups } => s.verifying = Some(*groups),
                Event::LeftOpen { .. } | Event::Stopping { .. } => {}
            }
        }
        match e {
            Event::Stopping {
                reason: StopReason::Systemic(_, m),
            } => self.println(format!("stopping: {m}")),
            Event::Verifying { groups } => self.println(format!(
                "Verifying with the platform {} sent earlier without an answer…",
                plural_groups(*groups)
            )),
            _ => {}
        }
        // Without a bar, the first failure is reported at once rather than at the next tick.
        self.refresh(first_failure);
    }
}

fn plural_groups(n: u64) -> String {
    if n == 1 {
        "1 group of operations".into()
    } else {
        format!("{n} groups of operations")
    }
}
