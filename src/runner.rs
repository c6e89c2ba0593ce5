//! The runner: pays a batch's open payments concurrently, paced, retried, journaled.
//!
//! Every attempt is committed to the journal before it is sent and its outcome after it. The
//! runner decides nothing about what an error means (the platform adapter classifies) and
//! prints nothing (a [`Reporter`] renders its events).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use crate::journal::{ItemRecord, ItemState, JournalError, JournalWriter, Write};
use crate::money::Cents;
use crate::platform::{BonusRequest, ErrorClass, PaidBonus, Platform, PlatformError, Systemic};

/// How hard to push.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Requests per second to start at.
    pub start_rate: f64,
    /// Requests per second at most. Between the two the pacer speeds up while MTurk answers
    /// and halves its pace when MTurk throttles.
    pub max_rate: f64,
    /// Attempts per payment for faults and lost answers (throttling has a larger allowance).
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Seeds the backoff jitter, so a run's timing can be replayed.
    pub seed: u64,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            concurrency: 8,
            start_rate: 5.0,
            max_rate: 20.0,
            max_attempts: 8,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(20),
            seed: 0,
        }
    }
}

/// What the runner tells its reporter.
#[derive(Debug, Clone)]
pub enum Event {
    Paid {
        seq: u32,
        amount: Cents,
        note: Option<String>,
    },
    Failed {
        seq: u32,
        line: u64,
        message: String,
    },
    /// An attempt failed and will be retried.
    Retrying {
        seq: u32,
        class: ErrorClass,
        message: String,
    },
    /// Left open for a later run (stopped, or out of attempts).
    LeftOpen {
        seq: u32,
        message: Option<String>,
    },
    RateChanged {
        rate: f64,
    },
    Stopping {
        reason: StopReason,
    },
}

/// Renders events (a progress bar, a log, a test's recorder).
pub trait Reporter: Send + Sync {
    fn event(&self, e: &Event);
}

/// A reporter that ignores everything.
pub struct Silent;
impl Reporter for Silent {
    fn event(&self, _: &Event) {}
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C or SIGTERM: finish the calls under way, start no more.
    User,
    /// Every further call would fail the same way.
    Systemic(Systemic, String),
}

/// Tells the runner to stop dispatching. Shared by signal handlers and the runner's own tasks.
#[derive(Default)]
pub struct StopSignal {
    flag: AtomicBool,
    reason: Mutex<Option<StopReason>>,
    notify: Notify,
}

impl StopSignal {
    /// The first reason given is kept.
    pub fn stop(&self, reason: StopReason) {
        {
            let mut r = self.reason.lock().expect("stop reason lock");
            if r.is_none() {
                *r = Some(reason);
            }
        }
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.reason.lock().expect("stop reason lock").clone()
    }

    /// Resolves once `stop` has been called.
    pub async fn stopped(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_stopped() {
                return;
            }
            notified.await;
        }
    }
}

/// One shared pace for all calls: multiplicative decrease when throttled, gentle increase after
/// a second's worth of calls without throttling, never above the configured maximum.
///
/// governor cannot change a quota in place, so a new rate swaps in a new limiter; a waiter that
/// waited on a limiter since replaced waits again on the current one.
pub struct Pacer {
    state: Mutex<PacerState>,
    max: f64,
}

struct PacerState {
    rate: f64,
    generation: u64,
    limiter: Arc<DefaultDirectRateLimiter>,
    successes: u64,
    last_decrease: Option<Instant>,
}

const MIN_RATE: f64 = 0.2;

fn limiter_for(rate: f64) -> Arc<DefaultDirectRateLimiter> {
    let period = Duration::from_secs_f64(1.0 / rate);
    let quota = Quota::with_period(period)
        .expect("a positive period")
        .allow_burst(std::num::NonZeroU32::MIN);
    Arc::new(RateLimiter::direct(quota))
}

impl Pacer {
    /// Starts at `start` requests per second and never goes above `max`.
    pub fn new(start: f64, max_rate: f64) -> Pacer {
        let max = max_rate.max(MIN_RATE);
        let start = start.clamp(MIN_RATE, max);
        Pacer {
            state: Mutex::new(PacerState {
                rate: start,
                generation: 0,
                limiter: limiter_for(start),
                successes: 0,
                last_decrease: None,
            }),
            max,
        }
    }

    pub fn rate(&self) -> f64 {
        self.state.lock().expect("pacer lock").rate
    }

    /// Waits for this caller's turn.
    pub async fn acquire(&self) {
        loop {
            let (generation, limiter) = {
                let s = self.state.lock().expect("pacer lock");
                (s.generation, s.limiter.clone())
            };
            limiter.until_ready().await;
            if self.state.lock().expect("pacer lock").generation == generation {
                return;
            }
        }
    }

    /// Halves the rate, at most once a second (throttled answers to calls sent at the old rate
    /// keep arriving for a while and must not halve it again). Returns the new rate if changed.
    pub fn on_throttle(&self) -> Option<f64> {
        let mut s = self.state.lock().expect("pacer lock");
        if s.last_decrease
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return None;
        }
        s.rate = (s.rate * 0.5).max(MIN_RATE);
        s.last_decrease = Some(Instant::now());
        s.successes = 0;
        Some(Self::swap(&mut s))
    }

    /// Counts a success; after about a second of them, raises the rate by a tenth.
    pub fn on_success(&self) -> Option<f64> {
        let mut s = self.state.lock().expect("pacer lock");
        s.successes += 1;
        if s.rate >= self.max || (s.successes as f64) < s.rate.max(5.0) {
            return None;
        }
        s.rate = (s.rate * 1.1 + 0.1).min(self.max);
        s.successes = 0;
        Some(Self::swap(&mut s))
    }

    fn swap(s: &mut PacerState) -> f64 {
        s.generation += 1;
        s.limiter = limiter_for(s.rate);
        s.rate
    }
}

/// How a batch run ended; the per-payment truth is in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    pub stop: Option<StopReason>,
}

/// Everything the tasks share.
struct Ctx<P> {
    platform: Arc<P>,
    journal: Arc<JournalWriter>,
    batch: i64,
    cfg: RunnerConfig,
    pacer: Pacer,
    stop: Arc<StopSignal>,
    reporter: Arc<dyn Reporter>,
}

/// Pays `items` (the open payments of batch `batch`, in order). Returns when every started payment has
/// settled; payments not started stay open in the journal.
pub async fn run_batch<P: Platform>(
    platform: Arc<P>,
    journal: Arc<JournalWriter>,
    batch: i64,
    items: Vec<ItemRecord>,
    cfg: RunnerConfig,
    reporter: Arc<dyn Reporter>,
    stop: Arc<StopSignal>,
) -> Result<RunEnd, JournalError> {
    let ctx = Arc::new(Ctx {
        platform,
        journal,
        batch,
        pacer: Pacer::new(cfg.start_rate, cfg.max_rate),
        cfg,
        stop,
        reporter,
    });
    let slots = Arc::new(Semaphore::new(ctx.cfg.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut first_error = None;
    for item in items {
        let permit = tokio::select! {
            biased;
            _ = ctx.stop.stopped() => break,
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let task_ctx = ctx.clone();
        tasks.spawn(async move {
            let _permit = permit;
            process(&task_ctx, item).await
        });
        // Reap finished tasks as we go so a long batch does not accumulate them.
        while let Some(done) = tasks.try_join_next() {
            if let Err(e) = done.expect("payment tasks do not panic") {
                first_error.get_or_insert(e);
                ctx.stop.stop(StopReason::User);
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done.expect("payment tasks do not panic") {
            first_error.get_or_insert(e);
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(RunEnd {
        stop: ctx.stop.reason(),
    })
}

async fn process<P: Platform>(ctx: &Ctx<P>, item: ItemRecord) -> Result<(), JournalError> {
    let seq = item.seq;
    let req = BonusRequest {
        worker: item.key.worker.clone(),
        assignment: item.key.assignment.clone(),
        amount: item.key.amount,
        reason: item.key.reason.clone(),
        token: item.token.clone(),
    };
    let mut rng =
        fastrand::Rng::with_seed(ctx.cfg.seed ^ (u64::from(seq) << 20) ^ ctx.batch as u64);
    // Sent before without a known outcome: ask MTurk before sending anything.
    let mut maybe_applied = item.state == ItemState::Unknown;
    if maybe_applied {
        match lookup(ctx, &item, &mut rng).await? {
            Lookup::Paid => {
                let note = "found in MTurk's bonus list after an interrupted call";
                return resolve(ctx, &item, ItemState::Paid, note.into()).await;
            }
            Lookup::NotPaid => {}
            Lookup::Unavailable(message) => return left_open(ctx, seq, Some(message)),
        }
    }
    let mut faults = 0;
    let mut throttles = 0;
    let mut last_message = None;
    while faults < ctx.cfg.max_attempts && throttles < ctx.cfg.max_attempts * 4 {
        if ctx.stop.is_stopped() {
            return left_open(ctx, seq, last_message);
        }
        tokio::select! {
            biased;
            _ = ctx.stop.stopped() => return left_open(ctx, seq, last_message),
            _ = ctx.pacer.acquire() => {}
        }
        let n = ctx
            .journal
            .write(Write::BeginAttempt {
                batch: ctx.batch,
                seq,
            })
            .await?;
        let result = ctx.platform.send_bonus(&req).await;
        let end =
            |outcome: &'static str, message: Option<String>, state: ItemState| Write::EndAttempt {
                batch: ctx.batch,
                seq,
                n,
                outcome,
                message,
                state,
                note: None,
            };
        let open_state = if maybe_applied {
            ItemState::Unknown
        } else {
            ItemState::Pending
        };
        let err = match result {
            Ok(()) => {
                ctx.journal
                    .write(end("paid", None, ItemState::Paid))
                    .await?;
                if let Some(rate) = ctx.pacer.on_success() {
                    ctx.reporter.event(&Event::RateChanged { rate });
                }
                ctx.reporter.event(&Event::Paid {
                    seq,
                    amount: item.key.amount,
                    note: None,
                });
                return Ok(());
            }
            Err(e) => e,
        };
        let message = err.to_string();
        match err.class {
            ErrorClass::AlreadyDone | ErrorClass::Permanent
                if err.class == ErrorClass::AlreadyDone || maybe_applied =>
            {
                // MTurk says the token was used, or refuses a payment that an earlier attempt
                // may have made: its bonus list decides, and nothing is sent again.
                let outcome = if err.class == ErrorClass::AlreadyDone {
                    "already_processed"
                } else {
                    "refused"
                };
                ctx.journal
                    .write(end(outcome, Some(message.clone()), ItemState::Unknown))
                    .await?;
                return match lookup(ctx, &item, &mut rng).await? {
                    Lookup::Paid => {
                        let note = "MTurk had already processed this payment's token; confirmed in its bonus list";
                        resolve(ctx, &item, ItemState::Paid, note.into()).await
                    }
                    Lookup::NotPaid if err.class == ErrorClass::AlreadyDone => {
                        let note = format!(
                            "{message} — but MTurk lists no matching bonus for this assignment. Check it on the requester website; payout will not send it again."
                        );
                        resolve(ctx, &item, ItemState::Failed, note).await
                    }
                    Lookup::NotPaid => resolve(ctx, &item, ItemState::Failed, message).await,
                    Lookup::Unavailable(m) => left_open(ctx, seq, Some(m)),
                };
            }
            ErrorClass::AlreadyDone | ErrorClass::Permanent => {
                ctx.journal
                    .write(end("refused", Some(message.clone()), ItemState::Failed))
                    .await?;
                ctx.reporter.event(&Event::Failed {
                    seq,
                    line: item.line,
                    message,
                });
                return Ok(());
            }
            ErrorClass::Systemic(kind) => {
                ctx.journal
                    .write(end("systemic", Some(message.clone()), open_state))
                    .await?;
                let reason = StopReason::Systemic(kind, message.clone());
                if !ctx.stop.is_stopped() {
                    ctx.reporter.event(&Event::Stopping {
                        reason: reason.clone(),
                    });
                }
                ctx.stop.stop(reason);
                return left_open(ctx, seq, Some(message));
            }
            ErrorClass::Throttled => {
                throttles += 1;
                ctx.journal
                    .write(end("throttled", Some(message.clone()), open_state))
                    .await?;
                if let Some(rate) = ctx.pacer.on_throttle() {
                    ctx.reporter.event(&Event::RateChanged { rate });
                }
            }
            ErrorClass::Retryable => {
                faults += 1;
                ctx.journal
                    .write(end("fault", Some(message.clone()), open_state))
                    .await?;
            }
            ErrorClass::Ambiguous => {
                faults += 1;
                maybe_applied = true;
                ctx.journal
                    .write(end("no_answer", Some(message.clone()), ItemState::Unknown))
                    .await?;
            }
        }
        ctx.reporter.event(&Event::Retrying {
            seq,
            class: err.class,
            message: message.clone(),
        });
        last_message = Some(message);
        let delay = backoff(&ctx.cfg, faults + throttles, &mut rng);
        tokio::select! {
            biased;
            _ = ctx.stop.stopped() => return left_open(ctx, seq, last_message),
            _ = tokio::time::sleep(delay) => {}
        }
    }
    left_open(ctx, seq, last_message)
}

fn left_open<P>(ctx: &Ctx<P>, seq: u32, message: Option<String>) -> Result<(), JournalError> {
    ctx.reporter.event(&Event::LeftOpen { seq, message });
    Ok(())
}

/// Records an outcome established without sending (from MTurk's bonus list), and reports it.
async fn resolve<P>(
    ctx: &Ctx<P>,
    item: &ItemRecord,
    state: ItemState,
    note: String,
) -> Result<(), JournalError> {
    ctx.journal
        .write(Write::Resolve {
            batch: ctx.batch,
            seq: item.seq,
            state,
            note: note.clone(),
        })
        .await?;
    ctx.reporter.event(&match state {
        ItemState::Paid => Event::Paid {
            seq: item.seq,
            amount: item.key.amount,
            note: Some(note),
        },
        _ => Event::Failed {
            seq: item.seq,
            line: item.line,
            message: note,
        },
    });
    Ok(())
}

/// Full jitter: uniform in [0, min(cap, base · 2^(k-1))].
fn backoff(cfg: &RunnerConfig, k: u32, rng: &mut fastrand::Rng) -> Duration {
    let exp = cfg
        .backoff_base
        .saturating_mul(1u32 << k.saturating_sub(1).min(16));
    let ceiling = exp.min(cfg.backoff_cap);
    ceiling.mul_f64(rng.f64())
}

enum Lookup {
    Paid,
    NotPaid,
    Unavailable(String),
}

/// Asks MTurk's bonus list whether this payment was made: more matching bonuses listed than
/// the journal accounts for under other tokens means this one was.
async fn lookup<P: Platform>(
    ctx: &Ctx<P>,
    item: &ItemRecord,
    rng: &mut fastrand::Rng,
) -> Result<Lookup, JournalError> {
    let listed = match read_with_retries(&ctx.cfg, Some(&ctx.pacer), Some(&ctx.stop), rng, || {
        ctx.platform.bonuses_for_assignment(&item.key.assignment)
    })
    .await
    {
        Ok(list) => list,
        Err(e) => {
            if let ErrorClass::Systemic(kind) = e.class {
                ctx.stop.stop(StopReason::Systemic(kind, e.to_string()));
            }
            return Ok(Lookup::Unavailable(format!(
                "could not check MTurk's bonus list: {e}"
            )));
        }
    };
    let matching = listed.iter().filter(|b| matches(b, item)).count() as u64;
    let accounted = ctx
        .journal
        .count_paid_others(ctx.batch, &item.key, &item.token)
        .await?;
    Ok(if matching > accounted {
        Lookup::Paid
    } else {
        Lookup::NotPaid
    })
}

fn matches(b: &PaidBonus, item: &ItemRecord) -> bool {
    b.worker == item.key.worker.as_str()
        && b.assignment == item.key.assignment.as_str()
        && b.amount == Some(item.key.amount)
}

/// A read-only call, retried like payments but not journaled (it changes nothing). Inside a run
/// it waits for the shared pace and gives up when the run is stopping.
pub async fn read_with_retries<T, F, Fut>(
    cfg: &RunnerConfig,
    pacer: Option<&Pacer>,
    stop: Option<&StopSignal>,
    rng: &mut fastrand::Rng,
    mut call: F,
) -> Result<T, PlatformError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PlatformError>>,
{
    let mut tries = 0;
    loop {
        if let Some(p) = pacer {
            p.acquire().await;
        }
        let err = match call().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        tries += 1;
        let stopping = stop.is_some_and(StopSignal::is_stopped);
        match err.class {
            ErrorClass::Throttled | ErrorClass::Retryable | ErrorClass::Ambiguous
                if tries < cfg.max_attempts * 2 && !stopping =>
            {
                if let (ErrorClass::Throttled, Some(p)) = (err.class, pacer) {
                    p.on_throttle();
                }
                tokio::time::sleep(backoff(cfg, tries, rng)).await;
            }
            _ => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let cfg = RunnerConfig {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(1),
            ..Default::default()
        };
        let mut rng = fastrand::Rng::with_seed(7);
        for k in 1..30 {
            let d = backoff(&cfg, k, &mut rng);
            let ceiling =
                Duration::from_millis(100 * (1u64 << (k - 1).min(16))).min(cfg.backoff_cap);
            assert!(d <= ceiling, "attempt {k}: {d:?} > {ceiling:?}");
        }
    }

    #[test]
    fn pacer_halves_on_throttle_once_a_second_and_recovers_up_to_max() {
        let p = Pacer::new(100.0, 100.0);
        assert_eq!(p.on_throttle(), Some(50.0));
        assert_eq!(
            p.on_throttle(),
            None,
            "a second throttle within the second is ignored"
        );
        let mut rate = 50.0;
        for _ in 0..10_000 {
            if let Some(r) = p.on_success() {
                assert!(r > rate && r <= 100.0);
                rate = r;
            }
        }
        assert_eq!(p.rate(), 100.0);
        assert_eq!(p.on_success(), None, "never above the maximum");
    }

    #[test]
    fn pacer_starts_low_and_climbs_to_the_ceiling_without_throttling() {
        let p = Pacer::new(5.0, 20.0);
        assert_eq!(p.rate(), 5.0);
        let mut steps = 0;
        for _ in 0..1000 {
            if p.on_success().is_some() {
                steps += 1;
            }
        }
        assert_eq!(p.rate(), 20.0);
        assert!(steps > 5, "climbs in steps, not at once ({steps})");
    }

    #[tokio::test]
    async fn stop_signal_wakes_waiters_and_keeps_the_first_reason() {
        let s = Arc::new(StopSignal::default());
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.stopped().await })
        };
        s.stop(StopReason::User);
        s.stop(StopReason::Systemic(Systemic::Credentials, "x".into()));
        waiter.await.unwrap();
        assert_eq!(s.reason(), Some(StopReason::User));
    }
}
