//! The adaptive pacer: finds and holds the request rate an account's API limit allows.
//!
//! MTurk publishes no rate limit. It answers `ThrottlingException: Rate exceeded` (nothing
//! applied) when a client goes too fast, and that answer is the only signal there is. The
//! pacer turns it into a pace, in four moves:
//!
//! * **Fast start.** Until the first throttle the pace grows by [`START_GROWTH`] requests/s
//!   every second from [`DEFAULT_START`] (10/s, then 80/s a second later, 150/s after two): that
//!   is a doubling every 0.1 s at 10/s and every second at 100/s, quick while a mistake is cheap
//!   and slower where overshooting costs more refused calls. The pace never grows past twice
//!   the rate requests are really sent at, so a run held back by its concurrency (or idle) does
//!   not inflate it.
//! * **Measure, don't halve.** On a throttle the pacer counts the requests the server accepted
//!   in the second before the refused one was sent (sent minus refused, by send time). Against
//!   a server that admits at most R requests in any second, that count *is* R. It becomes the
//!   limit estimate and the pace drops to [`BACK_OFF`] (95 %) of it, or of the pace itself if
//!   that is lower. (Halving, as AIMD does, averages about 75 % of the limit.) When the limit
//!   falls, each refusal measures a smaller count and the pace follows it down.
//! * **One decrease per round trip.** Throttled answers to requests sent before the latest
//!   decrease describe the old pace and are ignored; only a request sent after a decrease can
//!   show the new pace to be too fast. No timer guesses how long "one latency" is: every
//!   request carries its send time ([`Sent`]).
//! * **Return, then probe, CUBIC style.** After a decrease the pace climbs back to the estimate
//!   along a concave cubic (fast at first, flat near the estimate), then probes above it along
//!   a convex one (+10 % after one more cycle, or after 5 s if sooner; +80 % after twice that)
//!   until the server refuses again. A cycle is [`CYCLE_REQUESTS`] requests long at the
//!   estimated limit (1 s to 60 s), not a fixed time, so a probe and the throttle or two it
//!   costs come every few hundred requests whatever the limit: over a long run, under 1 % of
//!   requests are throttled at 10/s as at 100/s.
//!
//! A pace also holds **for every second**, not only on average: besides spacing requests
//! 1/pace apart, the pacer lets no more than `pace` requests (not counting refused ones) into
//! any one-second window. Smooth pacing never meets that bound. It matters right after a
//! decrease, when the last second still holds the burst that overshot: a server that counts
//! requests per sliding second (as the emulator does) goes on refusing that burst's successors
//! until it has aged out, which would otherwise be most of a fast start's throttles.
//!
//! A refusal when nothing at all was accepted in the second before it (the server still full of
//! an earlier run's requests, or of another client's on the same account) measures nothing: the
//! pace halves and grows again as at the start.
//!
//! Three cases are treated as provisional: a throttle after less than a second of sending (the
//! count covers less than a second), the first throttle of a run (the count covers a climb,
//! which underestimates a server that refills a token bucket steadily rather than counting per
//! second), and a count more than 10 % above the previous estimate (the limit is still being
//! discovered, or was raised). The pace still drops to 95 % of the count, but comes back to it
//! within a second and probes above it faster (in absolute terms too, so that a count of 1 or 2
//! is soon left behind), and the next throttle gives the real reading.
//!
//! This borrows from the AWS SDKs' adaptive retry mode (a token bucket whose fill rate follows
//! CUBIC from the measured send rate, β = 0.7) but measures the *accepted* rate rather than the
//! sent one, backs off less because the measurement is the server's own count, spaces probes by
//! requests rather than seconds, and adds the fast start and the one-second bound.
//!
//! A pinned pace (`--rate N`) never moves. [`DEFAULT_MAX`] (`--max-rate`) bounds the adaptive
//! pace. [`Pacer::resume_from`] starts at 80 % of a limit an earlier run measured and returns
//! to it and probes from there, instead of starting over.
//!
//! The decisions live in [`Controller`], a plain state machine that is told the time (so the
//! tests drive it in virtual time); [`Pacer`] wraps it for concurrent async callers. Calls in
//! flight are the caller's to bound: concurrency must be at least pace × latency or the pace is
//! never reached, and about twice that lets the fast start find the limit without waiting for
//! free slots (the simulation in the tests uses 2.5 × limit × latency, at least 8).

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
/// Until the first throttle, the pace grows by this many requests/s every second.
pub const START_GROWTH: f64 = 70.0;
/// On a throttle, the pace drops to this share of the accepted rate just measured (or of
/// itself, if lower).
pub const BACK_OFF: f64 = 0.95;
/// Requests (at the estimated limit) from a decrease back up to the estimate.
pub const CYCLE_REQUESTS: f64 = 300.0;

/// The return to the estimate takes at least and at most this long.
const CYCLE_MIN_NS: u64 = SECOND_NS;
const CYCLE_MAX_NS: u64 = 60 * SECOND_NS;
/// How far above the estimate the convex probe gets after one more cycle, or after
/// `PROBE_TIME_NS` if that is sooner.
const PROBE: f64 = 0.1;
const PROBE_TIME_NS: u64 = 5 * SECOND_NS;
/// A count this much above the previous estimate is provisional too: the limit is still being
/// discovered (or has been raised).
const RISING: f64 = 1.1;
/// After a provisional estimate the probe also adds this many requests/s times the cube of
/// the seconds since the return (+4/s after 1 s, +32/s after 2 s), so that a count of 1 or 2
/// per second is soon left behind.
const PROVISIONAL_PROBE: f64 = 4.0;
/// The pace never grows beyond this multiple of the rate requests were actually sent at.
const DEMAND_HEADROOM: f64 = 2.0;
/// A caller woken late (timer granularity) keeps its slot on the schedule if it is at most
/// this late; later than that the schedule restarts from now minus this.
const TOLERANCE_NS: u64 = 2_000_000;
/// A rise is reported once the pace has moved this much since the last report; decreases
/// always are.
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

/// A request the pacer let through. Hand it back with the outcome, so the pacer knows which
/// pace the outcome speaks for. Outcomes that say nothing about the pace (faults, lost
/// answers) need not be reported.
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
    /// No throttle seen yet: linear growth, last applied at `last`.
    Start {
        last: u64,
    },
    /// After a decrease at `since` to `from`: cubic back to `limit` over `cycle` ns, then
    /// probing above it.
    Settled {
        since: u64,
        from: f64,
        limit: f64,
        cycle: u64,
        /// The estimate may be far too low: probe faster.
        provisional: bool,
    },
    Pinned,
}

const BUCKETS_PER_SECOND: u64 = 128;
const BUCKET_NS: u64 = SECOND_NS / BUCKETS_PER_SECOND;
/// Buckets that together surely cover the last second: one more than a second's worth, since
/// the oldest is only partly inside it.
const WINDOW: u64 = BUCKETS_PER_SECOND + 1;
const RING: usize = 2 * BUCKETS_PER_SECOND as usize;

/// Requests sent and refused, counted by send time in buckets of 1/128 s, over the last two
/// seconds; with a running total of the accepted ones (sent minus refused) in the last
/// [`WINDOW`] buckets.
#[derive(Debug, Clone)]
struct Window {
    /// (bucket index, sent, refused)
    buckets: Vec<(u64, u32, u32)>,
    /// The newest bucket index the total covers.
    head: u64,
    /// Accepted requests in buckets `head - WINDOW + 1 ..= head`.
    total: u64,
}

impl Window {
    fn new() -> Window {
        Window {
            buckets: vec![(u64::MAX, 0, 0); RING],
            head: 0,
            total: 0,
        }
    }

    fn get(&self, idx: u64) -> (u32, u32) {
        let b = &self.buckets[(idx % RING as u64) as usize];
        if b.0 == idx { (b.1, b.2) } else { (0, 0) }
    }

    fn in_total(&self, idx: u64) -> bool {
        idx <= self.head && idx + WINDOW > self.head
    }

    /// Moves the total's window forward to end at bucket `idx`.
    fn advance(&mut self, idx: u64) {
        if idx <= self.head {
            return;
        }
        if idx - self.head >= WINDOW {
            self.total = 0;
        } else {
            // From the old window's first bucket to just before the new one's.
            for gone in (self.head + 1).saturating_sub(WINDOW)..(idx + 1).saturating_sub(WINDOW) {
                let (s, r) = self.get(gone);
                self.total -= u64::from(s - r);
            }
        }
        self.head = idx;
    }

    fn add_sent(&mut self, t: u64) {
        let idx = t / BUCKET_NS;
        self.advance(idx);
        let b = &mut self.buckets[(idx % RING as u64) as usize];
        if b.0 != idx {
            *b = (idx, 0, 0);
        }
        b.1 += 1;
        self.total += 1;
    }

    fn add_refused(&mut self, t: u64) {
        let idx = t / BUCKET_NS;
        let counted = self.in_total(idx);
        let b = &mut self.buckets[(idx % RING as u64) as usize];
        // Unknown once the ring has moved past it (or if it was never sent).
        if b.0 == idx && b.2 < b.1 {
            b.2 += 1;
            if counted {
                self.total -= 1;
            }
        }
    }

    /// Accepted (sent and not, or not yet, refused) in the buckets covering the second up to
    /// `t`, which must not be older than the ring.
    fn accepted_in_second_to(&self, t: u64) -> u64 {
        let last = t / BUCKET_NS;
        if last == self.head {
            return self.total;
        }
        (last.saturating_sub(WINDOW - 1)..=last)
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

    /// If the second up to `now` already holds `cap` or more accepted requests, when enough of
    /// them will have aged out of it.
    fn full_until(&mut self, now: u64, cap: f64) -> Option<u64> {
        let last = now / BUCKET_NS;
        self.advance(last);
        let mut count = self.total as f64;
        if count < cap {
            return None;
        }
        // Bucket i is out of the window once bucket i + WINDOW begins: every request in it is
        // then more than a second old.
        for i in last.saturating_sub(WINDOW - 1)..=last {
            let (s, r) = self.get(i);
            count -= f64::from(s - r);
            if count < cap {
                return Some((i + WINDOW) * BUCKET_NS);
            }
        }
        Some((last + WINDOW) * BUCKET_NS)
    }
}

/// The pacer's decisions: a state machine over events and the times they happen at.
///
/// Times are [`Duration`]s since an origin of the caller's choosing and must not go backwards
/// from one call to the next.
#[derive(Debug, Clone)]
pub struct Controller {
    phase: Phase,
    max: f64,
    rate: f64,
    limit: Option<f64>,
    /// When the last request was let through, on the schedule (GCRA).
    last_slot: Option<u64>,
    /// Throttles of requests sent before this answer an older pace.
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
        r.clamp(MIN_RATE, max.max(MIN_RATE))
    }
}

fn cycle_for(limit: f64) -> u64 {
    ((CYCLE_REQUESTS / limit * SECOND_NS as f64) as u64).clamp(CYCLE_MIN_NS, CYCLE_MAX_NS)
}

impl Controller {
    pub fn new(cfg: PaceConfig) -> Controller {
        let (phase, rate, max) = if cfg.pinned {
            let rate = clamp_rate(cfg.start, f64::INFINITY);
            (Phase::Pinned, rate, rate)
        } else {
            let max = clamp_rate(cfg.max, f64::INFINITY);
            (Phase::Start { last: 0 }, clamp_rate(cfg.start, max), max)
        };
        Controller {
            phase,
            max,
            rate,
            limit: None,
            last_slot: None,
            stale_before: 0,
            first_sent: None,
            reported: rate,
            window: Window::new(),
        }
    }

    /// Starts at [`RESUME_SHARE`] of a limit an earlier run measured, climbs back to it, then
    /// probes above it as after any decrease (the clock starts at the first request).
    pub fn resume_from(limit: f64, max: f64) -> Controller {
        let mut c = Controller::new(PaceConfig::adaptive(max));
        let limit = clamp_rate(limit, c.max);
        let from = clamp_rate(limit * RESUME_SHARE, c.max);
        c.phase = Phase::Settled {
            since: 0,
            from,
            limit,
            cycle: cycle_for(limit),
            provisional: false,
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

    /// The estimate of the server's limit, once a throttle (or an earlier run) has shown it.
    pub fn limit_estimate(&self) -> Option<f64> {
        self.limit
    }

    pub fn is_pinned(&self) -> bool {
        self.phase == Phase::Pinned
    }

    /// Asks to send a request at `now`: `Ok` lets it through (keep the [`Sent`] for its
    /// outcome), `Err(t)` says to ask again at `t` (later than `now`).
    pub fn try_send(&mut self, now: Duration) -> Result<Sent, Duration> {
        let now = ns(now);
        if self.first_sent.is_none() {
            // The curves run from the first request, not from when the pacer was made.
            match &mut self.phase {
                Phase::Start { last } => *last = now,
                Phase::Settled { since, .. } => *since = now,
                Phase::Pinned => {}
            }
        }
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

    /// The request was accepted. Returns the pace if it has risen enough since last reported.
    pub fn on_success(&mut self, _sent: Sent, now: Duration) -> Option<f64> {
        self.grow(ns(now));
        if self.rate >= self.reported * (1.0 + REPORT_STEP) {
            self.reported = self.rate;
            Some(self.rate)
        } else {
            None
        }
    }

    /// The request was refused as too fast. Returns the new pace if this decreased it.
    pub fn on_throttle(&mut self, sent: Sent, now: Duration) -> Option<f64> {
        let now = ns(now);
        self.window.add_refused(sent.at);
        if self.phase == Phase::Pinned || sent.at < self.stale_before {
            return None;
        }
        self.stale_before = now;
        let accepted = self.window.accepted_in_second_to(sent.at) as f64;
        if accepted == 0.0 {
            // Nothing of ours was accepted in that second: the server was still full of
            // something else (an earlier run's requests, another client on the account).
            // There is nothing to measure; halve, and grow again as at the start.
            self.rate = clamp_rate(self.rate / 2.0, self.max);
            self.phase = Phase::Start { last: now };
            self.reported = self.rate;
            return Some(self.rate);
        }
        let limit = clamp_rate(accepted, self.max);
        // Below both the count and the pace: refused at a pace that was already under the
        // count (edge effects, other clients on the account), it still comes down.
        let from = clamp_rate(BACK_OFF * limit.min(self.rate), self.max);
        let sending_for = sent.at.saturating_sub(self.first_sent.unwrap_or(0));
        let provisional = sending_for < SECOND_NS
            || matches!(self.phase, Phase::Start { .. })
            || self.limit.is_some_and(|before| limit > before * RISING);
        self.phase = Phase::Settled {
            since: now,
            from,
            limit,
            cycle: if provisional {
                CYCLE_MIN_NS
            } else {
                cycle_for(limit)
            },
            provisional,
        };
        self.limit = Some(limit);
        self.rate = from;
        self.reported = from;
        Some(from)
    }

    /// Raises the pace to what the phase calls for at `now`, no further than the callers'
    /// demand justifies. Never lowers it.
    fn grow(&mut self, now: u64) {
        let wanted = match self.phase {
            Phase::Pinned => return,
            Phase::Start { last } => {
                self.phase = Phase::Start { last: now };
                let dt = now.saturating_sub(last) as f64 / SECOND_NS as f64;
                self.rate + START_GROWTH * dt
            }
            Phase::Settled {
                since,
                from,
                limit,
                cycle,
                provisional,
            } => {
                let t = now.saturating_sub(since);
                if t < cycle {
                    let x = t as f64 / cycle as f64;
                    limit - (limit - from) * (1.0 - x).powi(3)
                } else {
                    let x = (t - cycle) as f64 / cycle.min(PROBE_TIME_NS) as f64;
                    let extra = if provisional { PROVISIONAL_PROBE } else { 0.0 };
                    limit * (1.0 + PROBE * x.powi(3)) + extra * x.powi(3)
                }
            }
        };
        let wanted = clamp_rate(wanted, self.max);
        if wanted <= self.rate {
            return;
        }
        let Some(first) = self.first_sent else {
            return;
        };
        // Requests per second sent over the last half second (less at the very start).
        let span = now
            .saturating_sub(first)
            .clamp(SECOND_NS / 10, SECOND_NS / 2);
        let n = span.div_ceil(BUCKET_NS);
        let demand = self.window.sent_in_buckets_to(now, n) as f64 * SECOND_NS as f64
            / (n * BUCKET_NS) as f64;
        self.rate = wanted.min(demand * DEMAND_HEADROOM).max(self.rate);
    }
}

/// The pace shared by every task of a run.
///
/// Callers wait in [`acquire`](Pacer::acquire) in turn (first come, first served; only the
/// first in line watches the clock), send, and report the outcome with the [`Sent`] they got.
/// The pace changes in place, so nobody has to queue again when it moves.
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
        // No method of the controller can panic half-way through a change, so a poisoned lock
        // (a panic elsewhere while it was held) still guards a consistent controller.
        self.ctl.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for this caller's turn to send. Cancel-safe: dropping the future gives up the
    /// turn without using a slot.
    pub async fn acquire(&self) -> Sent {
        let _turn = self.turn.lock().await;
        loop {
            // Read the clock under the lock, so the controller sees time in order.
            let next = {
                let mut ctl = self.ctl();
                ctl.try_send(self.origin.elapsed())
            };
            match next {
                Ok(sent) => return sent,
                Err(at) => tokio::time::sleep_until(self.origin + at).await,
            }
        }
    }

    /// Reports an accepted request; returns the pace if it has risen enough to show.
    pub fn on_success(&self, sent: Sent) -> Option<f64> {
        let mut ctl = self.ctl();
        ctl.on_success(sent, self.origin.elapsed())
    }

    /// Reports a request refused as too fast; returns the new pace if this decreased it.
    pub fn on_throttle(&self, sent: Sent) -> Option<f64> {
        let mut ctl = self.ctl();
        ctl.on_throttle(sent, self.origin.elapsed())
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
