//! Retrying: backoff with full jitter, and read-only calls retried under the shared pace.

use std::time::Duration;

use super::{EngineConfig, StopSignal};
use crate::pace::Pacer;
use crate::platform::{ErrorClass, PlatformError};

/// Full jitter: uniform in [0, min(cap, base · 2^(k-1))].
pub fn backoff(cfg: &EngineConfig, k: u32, rng: &mut fastrand::Rng) -> Duration {
    let exp = cfg
        .backoff_base
        .saturating_mul(1u32 << k.saturating_sub(1).min(16));
    let ceiling = exp.min(cfg.backoff_cap);
    ceiling.mul_f64(rng.f64())
}

/// A read-only call, retried like operations but not journaled (it changes nothing). Inside a
/// run it waits for the shared pace and gives up when the run is stopping. `on_retry` hears of
/// each failed attempt that will be retried, with the delay before the next.
pub async fn read_with_retries<T, F, Fut>(
    cfg: &EngineConfig,
    pacer: Option<&Pacer>,
    stop: Option<&StopSignal>,
    rng: &mut fastrand::Rng,
    mut on_retry: impl FnMut(&PlatformError, Duration),
    mut call: F,
) -> Result<T, PlatformError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PlatformError>>,
{
    let mut tries = 0;
    loop {
        let sent = match (pacer, stop) {
            (Some(p), Some(s)) => tokio::select! {
                biased;
                _ = s.stopped() => return Err(stopping()),
                sent = p.acquire() => Some(sent),
            },
            (Some(p), None) => Some(p.acquire().await),
            (None, _) => None,
        };
        let err = match call().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        tries += 1;
        let stopping_now = stop.is_some_and(StopSignal::is_stopped);
        match err.class {
            ErrorClass::Throttled | ErrorClass::NotSent | ErrorClass::Ambiguous
                if tries < cfg.read_attempts && !stopping_now =>
            {
                if let (ErrorClass::Throttled, Some(p), Some(sent)) = (err.class, pacer, sent) {
                    p.on_throttle(sent);
                }
                let delay = backoff(cfg, tries, rng);
                on_retry(&err, delay);
                match stop {
                    Some(s) => {
                        tokio::select! {
                            biased;
                            _ = s.stopped() => return Err(err),
                            _ = tokio::time::sleep(delay) => {}
                        }
                    }
                    None => tokio::time::sleep(delay).await,
                }
            }
            _ => return Err(err),
        }
    }
}

fn stopping() -> PlatformError {
    PlatformError {
        class: ErrorClass::NotSent,
        code: None,
        message: "stopped before the call was made".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let cfg = EngineConfig {
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
}
