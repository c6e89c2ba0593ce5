//! The shared pace of all calls: one governor rate limiter whose rate adapts to the platform's
//! answers (slower when throttled, faster while it accepts).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
