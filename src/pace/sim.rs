//! A discrete-event simulation in virtual time: a rate-limited server, a client with a fixed
//! number of workers, and the real [`Controller`] deciding when each request goes out.
//!
//! The server admits a request unless it has admitted `limit` or more in the last second
//! (a sliding window, as the emulator does); refused requests are answered without using
//! capacity. Every answer takes the latency plus a uniform jitter. The client behaves as the
//! runner does: each worker sends one payment at a time, waits in line for the pacer (the first
//! in line sleeps on a 1 ms timer until the controller's time), and after a throttle sleeps a
//! full-jitter backoff (250 ms doubling, 20 s cap) before sending the same payment again.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use super::{Controller, Sent};

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000 * MS;

#[derive(Debug, Clone)]
pub struct Scenario {
    /// Admitted requests per sliding second.
    pub limit: u32,
    /// The server's window starts with this many requests (someone else's) admitted at 0.
    pub prefill: u32,
    /// Instead of the sliding window: a token bucket refilled at `limit` per second that
    /// holds this many tokens (and starts full).
    pub bucket: Option<u32>,
    /// From this time on, the server admits this many instead.
    pub limit_change: Option<(Duration, u32)>,
    pub latency: Duration,
    /// Plus uniform `0..jitter` on every answer.
    pub jitter: Duration,
    /// Requests reach the server after uniform `0..arrival_jitter` (so they can overtake).
    pub arrival_jitter: Duration,
    /// Calls in flight at most (workers).
    pub concurrency: usize,
    /// Payments to make.
    pub requests: usize,
    pub seed: u64,
}

impl Scenario {
    pub fn new(limit: u32, latency_ms: u64, concurrency: usize, requests: usize) -> Scenario {
        Scenario {
            limit,
            prefill: 0,
            bucket: None,
            limit_change: None,
            latency: Duration::from_millis(latency_ms),
            jitter: Duration::from_millis(latency_ms / 5),
            arrival_jitter: Duration::from_millis(1),
            concurrency,
            requests,
            seed: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    /// Virtual time of the last payment's answer.
    pub elapsed: Duration,
    pub requests: usize,
    /// Throttled answers (each is a retried attempt).
    pub throttled: u64,
    /// (time, pace, limit estimate) after every answer.
    pub trace: Vec<(Duration, f64, Option<f64>)>,
    /// (time of arrival, admitted) for every request the server saw.
    pub arrivals: Vec<(Duration, bool)>,
    pub final_limit: Option<f64>,
}

impl Outcome {
    /// Payments per second over the whole run, as a share of `limit`.
    pub fn achieved(&self, limit: f64) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64() / limit
    }

    pub fn throttled_share(&self) -> f64 {
        self.throttled as f64 / self.requests as f64
    }

    /// The last traced pace at or before `t`.
    pub fn rate_at(&self, t: Duration) -> f64 {
        self.trace
            .iter()
            .take_while(|(at, _, _)| *at <= t)
            .last()
            .map_or(f64::NAN, |e| e.1)
    }

    /// Requests admitted by the server in `[from, to)`, per second.
    pub fn admitted_rate(&self, from: Duration, to: Duration) -> f64 {
        let n = self
            .arrivals
            .iter()
            .filter(|(t, ok)| *ok && *t >= from && *t < to)
            .count();
        n as f64 / (to - from).as_secs_f64()
    }

    pub fn throttled_between(&self, from: Duration, to: Duration) -> usize {
        self.arrivals
            .iter()
            .filter(|(t, ok)| !*ok && *t >= from && *t < to)
            .count()
    }
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    /// The worker wants to send (its current payment, or the next one).
    Ready(usize),
    /// The worker first in line wakes up.
    Wake,
    /// The request reaches the server.
    Arrive(usize, Sent),
    /// The answer reaches the worker.
    Answer(usize, Sent, bool),
}

struct Server {
    admitted: VecDeque<u64>,
    /// Token bucket: (tokens, at).
    tokens: Option<(f64, u64)>,
}

impl Server {
    fn admit(&mut self, now: u64, limit: u32, bucket: Option<u32>) -> bool {
        if let Some(size) = bucket {
            let (tokens, at) = self.tokens.unwrap_or((f64::from(size), now));
            let tokens = (tokens + (now - at) as f64 * f64::from(limit) / SECOND as f64)
                .min(f64::from(size));
            let ok = tokens >= 1.0;
            self.tokens = Some((if ok { tokens - 1.0 } else { tokens }, now));
            return ok;
        }
        while self.admitted.front().is_some_and(|&t| t + SECOND <= now) {
            self.admitted.pop_front();
        }
        if self.admitted.len() >= limit as usize {
            false
        } else {
            self.admitted.push_back(now);
            true
        }
    }
}

struct Sim {
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: Vec<Option<Ev>>,
}

impl Sim {
    fn at(&mut self, t: u64, ev: Ev) {
        self.queue.push(Reverse((t, self.events.len() as u64)));
        self.events.push(Some(ev));
    }

    fn next(&mut self) -> Option<(u64, Ev)> {
        let Reverse((t, i)) = self.queue.pop()?;
        Some((t, self.events[i as usize].take().expect("each event once")))
    }
}

fn dur(ns: u64) -> Duration {
    Duration::from_nanos(ns)
}

/// Runs the scenario with `ctl` deciding the pace.
pub fn run(sc: &Scenario, mut ctl: Controller) -> Outcome {
    let mut rng = fastrand::Rng::with_seed(sc.seed);
    let mut sim = Sim {
        queue: BinaryHeap::new(),
        events: Vec::new(),
    };
    let mut server = Server {
        admitted: vec![0; sc.prefill as usize].into(),
        tokens: None,
    };
    // Per worker: Some(attempts so far) while it holds a payment.
    let mut holding: Vec<Option<u32>> = vec![None; sc.concurrency];
    let mut next_payment = 0;
    let mut line: VecDeque<usize> = VecDeque::new();
    let mut sleeping = false;
    let mut done = 0;
    let mut out = Outcome {
        elapsed: Duration::ZERO,
        requests: sc.requests,
        throttled: 0,
        trace: Vec::new(),
        arrivals: Vec::new(),
        final_limit: None,
    };
    for w in 0..sc.concurrency {
        sim.at(0, Ev::Ready(w));
    }
    let jitter = |rng: &mut fastrand::Rng, d: Duration| -> u64 {
        let d = d.as_nanos() as u64;
        if d == 0 { 0 } else { rng.u64(0..d) }
    };
    while let Some((now, ev)) = sim.next() {
        match ev {
            Ev::Ready(w) => {
                if holding[w].is_none() {
                    if next_payment == sc.requests {
                        continue;
                    }
                    next_payment += 1;
                    holding[w] = Some(0);
                }
                line.push_back(w);
            }
            Ev::Wake => sleeping = false,
            Ev::Arrive(w, sent) => {
                let limit = match sc.limit_change {
                    Some((t, l)) if now >= t.as_nanos() as u64 => l,
                    _ => sc.limit,
                };
                let ok = server.admit(now, limit, sc.bucket);
                out.arrivals.push((dur(now), ok));
                let back = now + sc.latency.as_nanos() as u64 + jitter(&mut rng, sc.jitter);
                sim.at(back, Ev::Answer(w, sent, ok));
            }
            Ev::Answer(w, sent, ok) => {
                if ok {
                    ctl.on_success(sent, dur(now));
                    holding[w] = None;
                    done += 1;
                    out.elapsed = dur(now);
                    sim.at(now, Ev::Ready(w));
                } else {
                    out.throttled += 1;
                    ctl.on_throttle(sent, dur(now));
                    let k = holding[w]
                        .as_mut()
                        .expect("a worker answers for its payment");
                    *k += 1;
                    let ceiling = ((250 * MS) << (*k - 1).min(16)).min(20 * SECOND);
                    sim.at(now + rng.u64(0..=ceiling), Ev::Ready(w));
                }
                out.trace.push((dur(now), ctl.rate(), ctl.limit_estimate()));
            }
        }
        // The first in line asks the pacer; on a refusal it sleeps on the (1 ms) timer.
        while !sleeping && let Some(&w) = line.front() {
            match ctl.try_send(dur(now)) {
                Ok(sent) => {
                    line.pop_front();
                    let arrive = now + jitter(&mut rng, sc.arrival_jitter);
                    sim.at(arrive, Ev::Arrive(w, sent));
                }
                Err(at) => {
                    let at = (at.as_nanos() as u64).max(now + 1).div_ceil(MS) * MS;
                    sleeping = true;
                    sim.at(at, Ev::Wake);
                }
            }
        }
    }
    assert_eq!(done, sc.requests, "every payment was made");
    out.final_limit = ctl.limit_estimate();
    out
}
