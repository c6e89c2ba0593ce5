//! The adaptive pacer: finds and holds the request rate an account's API limit allows.
//!
//! MTurk publishes no rate limit. It answers `ThrottlingException: Rate exceeded` (nothing
//! applied) when a client goes too fast, and that answer is the only signal there is. The
//! pacer turns it into a pace:
//!
//! * **Start fast.** Until the first throttle, the pace doubles every half second
//!   (slow-start style), starting at [`DEFAULT_START`] per second, as long as the callers
//!   actually use the pace they have (the pace never grows past twice the rate of requests
//!   really sent, so a run held back by its concurrency does not inflate it).
//! * **Measure, don't halve.** On a throttle the pacer counts the requests the server
//!   accepted in the second before the refused one was sent (sent minus refused, by send time).
//!   Against a server that admits at most R requests in any second that count *is* R; it
//!   becomes the limit estimate, and the pace drops to [`BACK_OFF`] (90 %) of it. A throttle
//!   that comes although the pace was already below that (the server's limit fell, or the
//!   server is still full of an earlier burst) cuts the pace by a further [`CUT`] instead.
//! * **One decrease per round trip.** Throttled answers to requests sent before the latest
//!   decrease describe the old pace and are ignored; only a request sent after the decrease
//!   can prove the new pace too fast. No timer guesses how long "one latency" is.
//! * **Probe gently, CUBIC style.** After a decrease the pace climbs back to the estimate
//!   along a concave cubic (quickly at first, flat near the estimate), rests there, then probes
//!   above it along a convex cubic until the server refuses again. The cycle is scaled in
//!   *requests* rather than seconds ([`CYCLE_REQUESTS`] requests to get back to the estimate),
//!   so a probe, and the one or two throttled answers it costs, comes every few hundred
//!   requests whatever the limit: below 1 % throttled at 10/s as at 100/s.
//! * **A pace holds for every second, not only on average.** Besides spacing requests
//!   1/pace apart, the pacer lets no more than `pace` requests (not counting refused ones)
//!   into any one-second window. Smooth pacing never hits that; it matters right after a
//!   decrease, when the last second still holds the burst that overshot. Servers that count
//!   requests in a sliding second (as the emulator does) would go on refusing that burst's
//!   successors for up to a second, which is where most throttles of a fast start come from.
//!
//! This borrows from the AWS SDKs' adaptive retry mode (a token bucket whose fill rate follows
//! CUBIC from the measured send rate, β = 0.7) but measures the *accepted* rate rather than
//! the sent one, backs off less (the measurement is already the server's own count), spaces
//! probes by requests, and adds the slow start and the one-second cap.
//!
//! A pinned pace (`--rate N`) never moves. A high ceiling ([`DEFAULT_MAX`], `--max-rate`)
//! bounds the adaptive pace. [`Pacer::resume_from`] starts at 80 % of a limit measured by an
//! earlier run and probes from there instead of starting over.
//!
//! The decisions live in [`Controller`], a plain state machine that is told the time (so tests
//! and the simulation drive it in virtual time); [`Pacer`] wraps it for concurrent async
//! callers. Concurrency (calls in flight) is the caller's to bound: it must be at least
//! pace × latency, or the pace is never reached.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Pace at the start of a run that knows nothing of the account's limit (requests/s).
pub const DEFAULT_START: f64 = 10.0;
/// Ceiling of the adaptive pace (requests/s): a safety bound, not a guess at the limit.
pub const DEFAULT_MAX: f64 = 200.0;
/// The pace never goes below this (requests/s).
pub const MIN_RATE: f64 = 0.2;
/// A resumed run starts at this share of the remembered limit.
pub const RESUME_SHARE: f64 = 0.8;

/// Until the first throttle, the pace doubles every this long.
const DOUBLING: Duration = Duration::from_millis(500);
/// ... at [`DEFAULT_START`]; at pace r, it takes `DOUBLING · (r / DEFAULT_START)^DOUBLING_EXP`.
const DOUBLING_EXP: f64 = 0.0;
/// On a throttle, the pace drops to this share of the accepted rate just measured.
pub const BACK_OFF: f64 = 0.9;
/// When the pace is already under `BACK_OFF` × the measured rate and still refused.
pub const CUT: f64 = 0.7;
/// Requests (at the estimated limit) from a decrease back up to the estimate; the probe above
/// it takes as many again to reach +10 %.
pub const CYCLE_REQUESTS: f64 = 150.0;
/// The return to the estimate takes at least and at most this long.
const CYCLE_MIN: Duration = Duration::from_secs(1);
const CYCLE_MAX: Duration = Duration::from_secs(60);
/// How far above the estimate the convex probe gets after one more cycle, or after
/// `PROBE_TIME_NS` if that is shorter.
const PROBE: f64 = 0.1;
const PROBE_TIME_NS: u64 = 5 * SECOND_NS;
/// The pace never grows beyond this multiple of the rate requests were actually sent at.
const DEMAND_HEADROOM: f64 = 2.0;
/// A caller woken late (timer granularity) keeps its slot on the schedule if it is at most
/// this late; later than that the schedule restarts from now minus this.
const TOLERANCE_NS: u64 = 2_000_000;
/// A rate change is reported once it has moved this much since the last report (decreases
/// always are).
const REPORT_STEP: f64 = 0.05;

const SECOND_NS: u64 = 1_000_000_000;

/// How the pace is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceConfig {
    /// Requests per second to start at (the fixed pace when pinned).
    pub start: f64,
    /// Ceiling of the adaptive pace.
    pub max: f64,
    /// A pinned pace never moves.
    pub pinned: bool,
}

impl PaceConfig {
    /// Adaptive from [`DEFAULT_START`], never above `max`.
    pub fn adaptive(max: f64) -> PaceConfig {
        PaceConfig {
            start: DEFAULT_START,
            max,
            pinned: false,
        }
    }

    /// Exactly `rate` requests per second, whatever the server says.
    pub fn pinned(rate: f64) -> PaceConfig {
        PaceConfig {
            start: rate,
            max: rate,
            pinned: true,
        }
    }
}

impl Default for PaceConfig {
    fn default() -> Self {
        PaceConfig::adaptive(DEFAULT_MAX)
    }
}

/// The constants, gathered so the simulation can try others.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tuning {
    pub doubling: Duration,
    pub doubling_exp: f64,
    pub back_off: f64,
    pub cut: f64,
    pub cycle_requests: f64,
    pub probe: f64,
    pub first_provisional: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            doubling: DOUBLING,
            doubling_exp: DOUBLING_EXP,
            back_off: BACK_OFF,
            cut: CUT,
            cycle_requests: CYCLE_REQUESTS,
            probe: PROBE,
            first_provisional: true,
        }
    }
}

/// A request the pacer let through: hand it back with its outcome, so the pacer knows which
/// pace the outcome speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Nanoseconds since the controller's origin.
    at: u64,
}

impl Sent {
    /// When it was let through, since the controller's origin.
    pub fn at(self) -> Duration {
        Duration::from_nanos(self.at)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// No throttle seen yet: exponential growth, last applied at `last`.
    Start {
        last: u64,
    },
    /// After a decrease at `since` to `from`: cubic back to `limit`, then probing above it.
    Settled {
        since: u64,
        from: f64,
        limit: f64,
        /// Time from `since` back to the limit, in ns.
        cycle: u64,
    },
    Pinned,
}

/// Per-bucket counts of requests by send time, over the last two seconds.
#[derive(Debug, Clone)]
struct Window {
    /// (bucket index, sent, refused)
    buckets: Vec<(u64, u32, u32)>,
}

const BUCKETS_PER_SECOND: u64 = 128;
const BUCKET_NS: u64 = SECOND_NS / BUCKETS_PER_SECOND;
const RING: usize = 2 * BUCKETS_PER_SECOND as usize;

impl Window {
    fn new() -> Window {
        Window {
            buckets: vec![(u64::MAX, 0, 0); RING],
        }
    }

    fn slot(&mut self, idx: u64) -> Option<&mut (u64, u32, u32)> {
        let b = &mut self.buckets[(idx % RING as u64) as usize];
        if b.0 == idx {
            Some(b)
        } else if b.0 == u64::MAX || b.0 < idx {
            *b = (idx, 0, 0);
            Some(b)
        } else {
            // Older than the ring remembers.
            None
        }
    }

    fn add_sent(&mut self, t: u64) {
        if let Some(b) = self.slot(t / BUCKET_NS) {
            b.1 += 1;
        }
    }

    fn add_refused(&mut self, t: u64) {
        if let Some(b) = self.slot(t / BUCKET_NS) {
            b.2 = (b.2 + 1).min(b.1);
        }
    }

    fn get(&self, idx: u64) -> (u32, u32) {
        let b = &self.buckets[(idx % RING as u64) as usize];
        if b.0 == idx { (b.1, b.2) } else { (0, 0) }
    }

    /// Requests sent and not (yet) refused in the buckets that cover the second up to `t`
    /// (one bucket more than a second, so that nothing the server still counts is left out).
    fn accepted_in_second_to(&self, t: u64) -> u64 {
        let last = t / BUCKET_NS;
        (last.saturating_sub(BUCKETS_PER_SECOND)..=last)
            .map(|i| {
                let (s, r) = self.get(i);
                u64::from(s - r)
            })
            .sum()
    }

    /// Requests sent in the `n` buckets ending with `t`'s.
    fn sent_in_buckets_to(&self, t: u64, n: u64) -> u64 {
        let last = t / BUCKET_NS;
        (last.saturating_sub(n - 1)..=last)
            .map(|i| u64::from(self.get(i).0))
            .sum()
    }

    /// If the second ending at `now` already holds `cap` or more accepted requests, the time
    /// at which enough of them will have left it.
    fn full_until(&self, now: u64, cap: f64) -> Option<u64> {
        let mut count = self.accepted_in_second_to(now) as f64;
        if count < cap {
            return None;
        }
        // Bucket i leaves the window when bucket i + 129 begins: by then every request in it
        // is more than a second old.
        let last = now / BUCKET_NS;
        for i in last.saturating_sub(BUCKETS_PER_SECOND)..=last {
            let (s, r) = self.get(i);
            count -= f64::from(s - r);
            if count < cap {
                return Some((i + BUCKETS_PER_SECOND + 1) * BUCKET_NS);
            }
        }
        Some((last + BUCKETS_PER_SECOND + 1) * BUCKET_NS)
    }
}

/// The pacer's decisions, as a state machine over events and the times they happen at.
///
/// Times are [`Duration`]s since an origin of the caller's choosing, and must not go
/// backwards between calls.
#[derive(Debug, Clone)]
pub struct Controller {
    t: Tuning,
    phase: Phase,
    max: f64,
    rate: f64,
    limit: Option<f64>,
    /// Virtual time of the last slot handed out (GCRA).
    last_slot: Option<u64>,
    /// Throttles of requests sent before this are answers to an older pace.
    stale_before: u64,
    first_sent: Option<u64>,
    reported: f64,
    window: Window,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn clamp_rate(r: f64, max: f64) -> f64 {
    if r.is_nan() {
        MIN_RATE
    } else {
        r.clamp(MIN_RATE, max)
    }
}

impl Controller {
    pub fn new(cfg: PaceConfig) -> Controller {
        let max = clamp_rate(cfg.max, f64::INFINITY);
        let (phase, rate) = if cfg.pinned {
            let rate = clamp_rate(cfg.start, f64::INFINITY);
            (Phase::Pinned, rate)
        } else {
            let rate = clamp_rate(cfg.start, max);
            (Phase::Start { last: 0 }, rate)
        };
        Controller {
            t: Tuning::default(),
            phase,
            max: if cfg.pinned { rate } else { max },
            rate,
            limit: None,
            last_slot: None,
            stale_before: 0,
            first_sent: None,
            reported: rate,
            window: Window::new(),
        }
    }

    /// Starts at [`RESUME_SHARE`] of a limit an earlier run measured and climbs back to it,
    /// then probes above it as after any decrease.
    pub fn resume_from(limit: f64, max: f64) -> Controller {
        let mut c = Controller::new(PaceConfig::adaptive(max));
        let limit = clamp_rate(limit, c.max);
        let from = clamp_rate(limit * RESUME_SHARE, c.max);
        c.phase = Phase::Settled {
            since: 0,
            from,
            limit,
            cycle: cycle_for(limit, c.t.cycle_requests),
        };
        c.rate = from;
        c.reported = from;
        c.limit = Some(limit);
        c
    }

    /// The current pace, requests per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    #[cfg(test)]
    pub(crate) fn tuned(mut self, t: Tuning) -> Controller {
        self.t = t;
        if let Phase::Settled { limit, cycle, .. } = &mut self.phase {
            *cycle = cycle_for(*limit, t.cycle_requests);
        }
        self
    }

    /// The estimate of the server's limit, once a throttle (or an earlier run) has shown it.
    pub fn limit_estimate(&self) -> Option<f64> {
        self.limit
    }

    pub fn is_pinned(&self) -> bool {
        self.phase == Phase::Pinned
    }

    /// Asks to send a request at `now`: `Ok` lets it through (keep the [`Sent`] for its
    /// outcome), `Err(t)` says to ask again at `t`.
    pub fn try_send(&mut self, now: Duration) -> Result<Sent, Duration> {
        let now = ns(now);
        self.grow(now);
        let interval = (SECOND_NS as f64 / self.rate) as u64;
        let due = self.last_slot.map_or(0, |l| l.saturating_add(interval));
        if now < due {
            return Err(Duration::from_nanos(due));
        }
        if let Some(until) = self.window.full_until(now, self.rate) {
            return Err(Duration::from_nanos(until));
        }
        self.last_slot = Some(due.max(now.saturating_sub(TOLERANCE_NS)));
        self.window.add_sent(now);
        self.first_sent.get_or_insert(now);
        Ok(Sent { at: now })
    }

    /// The request was accepted. Returns the new pace if it has moved enough to report.
    pub fn on_success(&mut self, _sent: Sent, now: Duration) -> Option<f64> {
        self.grow(ns(now));
        self.report()
    }

    /// The request was refused as too fast. Returns the new pace if it changed.
    pub fn on_throttle(&mut self, sent: Sent, now: Duration) -> Option<f64> {
        let now = ns(now);
        self.window.add_refused(sent.at);
        if self.phase == Phase::Pinned || sent.at < self.stale_before {
            return None;
        }
        let accepted = self.window.accepted_in_second_to(sent.at) as f64;
        let limit = clamp_rate(accepted, self.max);
        let target = limit * self.t.back_off;
        let from = clamp_rate(
            if target < self.rate {
                target
            } else {
                self.rate * self.t.cut
            },
            self.max,
        );
        // The count is the limit of a server that counts requests per second, whatever the
        // pace did in that second. A server that refills a small bucket steadily refuses as
        // soon as the pace passes its rate, and then the count can be far below it: after
        // less than a second of sending, or at the end of the fast start's climb. Take the
        // cautious reading then, but return to it and probe above it within seconds rather
        // than a whole cycle.
        let sending_for = sent.at.saturating_sub(self.first_sent.unwrap_or(0));
        let provisional = sending_for < SECOND_NS
            || (self.t.first_provisional && matches!(self.phase, Phase::Start { .. }));
        let cycle = if provisional {
            CYCLE_MIN.as_nanos() as u64
        } else {
            cycle_for(limit, self.t.cycle_requests)
        };
        self.limit = Some(limit);
        self.rate = from;
        self.phase = Phase::Settled {
            since: now,
            from,
            limit,
            cycle,
        };
        self.stale_before = now;
        self.reported = from;
        Some(from)
    }

    fn report(&mut self) -> Option<f64> {
        if (self.rate - self.reported).abs() >= self.reported * REPORT_STEP {
            self.reported = self.rate;
            Some(self.rate)
        } else {
            None
        }
    }

    /// The pace the phase calls for at `now`, grown no further than the demand justifies.
    fn grow(&mut self, now: u64) {
        let wanted = match self.phase {
            Phase::Pinned => return,
            Phase::Start { last } => {
                self.phase = Phase::Start { last: now };
                let doubling = (self.t.doubling.as_secs_f64()
                    * (self.rate / DEFAULT_START).powf(self.t.doubling_exp))
                .clamp(0.1, 2.0);
                let x = now.saturating_sub(last) as f64 / 1e9 / doubling;
                self.rate * x.exp2()
            }
            Phase::Settled {
                since,
                from,
                limit,
                cycle,
            } => {
                let t = now.saturating_sub(since);
                if t < cycle {
                    let x = t as f64 / cycle as f64;
                    limit - (limit - from) * (1.0 - x).powi(3)
                } else {
                    let x = (t - cycle) as f64 / cycle.min(PROBE_TIME_NS) as f64;
                    limit * (1.0 + self.t.probe * x.powi(3))
                }
            }
        };
        let wanted = clamp_rate(wanted, self.max);
        if wanted <= self.rate {
            return;
        }
        // Grow only as far as the callers show they can use.
        let demand = match self.first_sent {
            None => return,
            Some(first) => {
                let span = now
                    .saturating_sub(first)
                    .clamp(SECOND_NS / 10, SECOND_NS / 2);
                let n = span.div_ceil(BUCKET_NS);
                self.window.sent_in_buckets_to(now, n) as f64 * SECOND_NS as f64
                    / (n * BUCKET_NS) as f64
            }
        };
        self.rate = wanted.min(demand * DEMAND_HEADROOM).max(self.rate);
    }
}

fn cycle_for(limit: f64, requests: f64) -> u64 {
    let secs = (requests / limit).clamp(CYCLE_MIN.as_secs_f64(), CYCLE_MAX.as_secs_f64());
    (secs * SECOND_NS as f64) as u64
}

/// The pace shared by every task of a run.
///
/// Callers wait in [`acquire`](Pacer::acquire) in turn (first come, first served; only the
/// first in line watches the clock), send, and report the outcome with the [`Sent`] they got.
/// The pace changes in place: nobody has to re-queue when it moves.
pub struct Pacer {
    origin: Instant,
    ctl: Mutex<Controller>,
    turn: tokio::sync::Mutex<()>,
}

impl Pacer {
    pub fn new(cfg: PaceConfig) -> Pacer {
        Pacer::with(Controller::new(cfg))
    }

    /// Starts near a limit an earlier run of the same account measured (see
    /// [`Controller::resume_from`]).
    pub fn resume_from(limit: f64, max: f64) -> Pacer {
        Pacer::with(Controller::resume_from(limit, max))
    }

    fn with(ctl: Controller) -> Pacer {
        Pacer {
            origin: Instant::now(),
            ctl: Mutex::new(ctl),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    fn ctl(&self) -> std::sync::MutexGuard<'_, Controller> {
        // The controller is left consistent between statements; a panic elsewhere cannot
        // poison anything it relies on.
        self.ctl.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this caller's turn to send. Cancel-safe: dropping the future gives up the
    /// turn without using a slot.
    pub async fn acquire(&self) -> Sent {
        let _turn = self.turn.lock().await;
        loop {
            let next = self.ctl().try_send(self.origin.elapsed());
            match next {
                Ok(sent) => return sent,
                Err(at) => tokio::time::sleep_until(self.origin + at).await,
            }
        }
    }

    /// Reports an accepted request; returns the new pace if it moved enough to show.
    pub fn on_success(&self, sent: Sent) -> Option<f64> {
        let now = self.origin.elapsed();
        self.ctl().on_success(sent, now)
    }

    /// Reports a request refused as too fast; returns the new pace if it changed.
    pub fn on_throttle(&self, sent: Sent) -> Option<f64> {
        let now = self.origin.elapsed();
        self.ctl().on_throttle(sent, now)
    }

    /// The current pace, requests per second.
    pub fn rate(&self) -> f64 {
        self.ctl().rate()
    }

    /// The server's limit as measured at the last throttle (or remembered from an earlier
    /// run); `None` until then.
    pub fn limit_estimate(&self) -> Option<f64> {
        self.ctl().limit_estimate()
    }

    pub fn is_pinned(&self) -> bool {
        self.ctl().is_pinned()
    }
}

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
