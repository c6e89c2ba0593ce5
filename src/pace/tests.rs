//! The pacer's decisions, tested with injected time, and the whole loop in a virtual-time
//! simulation against a rate-limited server.

use std::sync::Arc;
use std::time::Duration;

use super::sim::{Outcome, Scenario, run};
use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A caller that sends whenever the controller lets it and hears back at once (accepted),
/// from `from` until `until`; returns the time it stopped at.
fn send_eagerly(c: &mut Controller, from: Duration, until: Duration) -> Duration {
    let mut now = from;
    while now < until {
        match c.try_send(now) {
            Ok(sent) => {
                c.on_success(sent, now);
            }
            Err(at) => {
                assert!(at > now, "asked to come back at {at:?}, not after {now:?}");
                now = at;
            }
        }
    }
    now
}

/// Sends exactly every `every` (if the controller allows it then), all accepted.
fn send_every(c: &mut Controller, every: Duration, from: Duration, until: Duration) -> Sent {
    let mut now = from;
    let mut last = None;
    while now < until {
        if let Ok(sent) = c.try_send(now) {
            c.on_success(sent, now);
            last = Some(sent);
        }
        now += every;
    }
    last.expect("something was sent")
}

#[test]
fn the_fast_start_adds_70_per_second_while_the_callers_keep_up() {
    let mut c = Controller::new(PaceConfig::default());
    assert_eq!(c.rate(), DEFAULT_START);
    assert_eq!(c.limit_estimate(), None);
    send_eagerly(&mut c, Duration::ZERO, secs(1.0));
    let expected = DEFAULT_START + START_GROWTH;
    assert!(
        (expected - 2.0..=expected + 1.0).contains(&c.rate()),
        "after a second: {}",
        c.rate()
    );
    send_eagerly(&mut c, secs(1.0), secs(10.0));
    assert_eq!(c.rate(), DEFAULT_MAX, "never above the ceiling");
}

#[test]
fn the_clock_starts_at_the_first_request() {
    let mut c = Controller::new(PaceConfig::default());
    c.try_send(secs(30.0))
        .expect("the first request goes at once");
    assert_eq!(c.rate(), DEFAULT_START);
}

#[test]
fn the_pace_grows_no_further_than_twice_what_the_callers_send() {
    let mut c = Controller::new(PaceConfig {
        start: 4.0,
        max: 200.0,
        pinned: false,
    });
    // Concurrency-bound callers: 5 requests a second, whatever the pace allows.
    send_every(&mut c, ms(200), Duration::ZERO, secs(20.0));
    assert!(
        (9.0..=11.0).contains(&c.rate()),
        "twice 5/s, not {}",
        c.rate()
    );
}

#[test]
fn requests_are_spaced_by_the_pace_and_a_late_caller_keeps_the_schedule() {
    let mut c = Controller::new(PaceConfig::pinned(10.0));
    c.try_send(Duration::ZERO).unwrap();
    assert_eq!(c.try_send(ms(50)), Err(ms(100)));
    // Woken a millisecond late by the timer: the next slot stays at 200 ms.
    c.try_send(ms(101)).unwrap();
    assert_eq!(c.try_send(ms(150)), Err(ms(200)));
    // Idle for a while: no burst to catch up, one request then the spacing again.
    c.try_send(ms(5_000)).unwrap();
    let next = c.try_send(ms(5_001)).unwrap_err();
    assert!(next >= ms(5_098), "{next:?}");
}

#[test]
fn a_throttle_measures_the_accepted_rate_and_backs_off_to_95_percent_of_it() {
    let mut c = Controller::new(PaceConfig::default());
    // 50 requests a second for three seconds, all accepted, then one refused.
    let last = send_every(&mut c, ms(20), Duration::ZERO, secs(3.0));
    let new = c.on_throttle(last, secs(3.1)).expect("a decrease");
    let limit = c.limit_estimate().expect("an estimate");
    assert!((49.0..=51.0).contains(&limit), "{limit}");
    assert!((new - limit * BACK_OFF).abs() < 1e-9, "{new} for {limit}");
    assert_eq!(c.rate(), new);
}

#[test]
fn throttles_of_requests_sent_before_a_decrease_do_not_decrease_it_again() {
    let mut c = Controller::new(PaceConfig::default());
    send_every(&mut c, ms(20), Duration::ZERO, secs(2.0));
    let early = c.try_send(secs(2.0)).unwrap();
    let late = c.try_send(secs(2.05)).unwrap();
    let first = c.on_throttle(late, secs(2.15)).unwrap();
    // `early` was sent before the decrease: its refusal is about the old pace.
    assert_eq!(c.on_throttle(early, secs(2.16)), None);
    assert_eq!(c.rate(), first);
    // A request sent after the decrease and refused does count.
    let after = c.try_send(secs(2.3)).unwrap();
    assert!(c.on_throttle(after, secs(2.4)).is_some());
    assert!(c.rate() < first);
}

#[test]
fn each_refusal_after_a_decrease_measures_again_and_lowers_the_pace_again() {
    let mut c = Controller::new(PaceConfig::default());
    let last = send_every(&mut c, ms(20), Duration::ZERO, secs(3.0));
    let first = c.on_throttle(last, secs(3.1)).unwrap();
    // Refused, the next request measures what its second accepted: less than before.
    let next = c.try_send(secs(3.1)).unwrap();
    let second = c.on_throttle(next, secs(3.2)).unwrap();
    let limit = c.limit_estimate().unwrap();
    assert!(second < first, "{second} after {first}");
    assert!(
        (second - BACK_OFF * limit).abs() < 1e-9,
        "{second} for {limit}"
    );
}

#[test]
fn a_refusal_with_nothing_accepted_halves_the_pace_and_starts_over() {
    let mut c = Controller::resume_from(40.0, 200.0);
    let first = c.try_send(secs(1.0)).unwrap();
    assert_eq!(c.on_throttle(first, secs(1.1)), Some(16.0));
    assert_eq!(
        c.limit_estimate(),
        Some(40.0),
        "nothing measured, estimate kept"
    );
    send_eagerly(&mut c, secs(1.1), secs(2.1));
    assert!(c.rate() > 16.0 + 0.8 * START_GROWTH, "{}", c.rate());
}

#[test]
fn no_more_than_the_pace_in_any_one_second_after_a_burst() {
    // 150 requests in 0.75 s (200/s), then a throttle: the estimate is 150/s and the pace
    // 142.5/s, but the last second already holds 150, so nothing goes until some age out.
    let mut c = Controller::new(PaceConfig {
        start: 200.0,
        max: 200.0,
        pinned: false,
    });
    let last = send_every(&mut c, ms(5), Duration::ZERO, ms(750));
    c.on_throttle(last, ms(760)).unwrap();
    let until = c.try_send(ms(800)).unwrap_err();
    assert!(
        until > secs(1.0),
        "held until the burst ages out, not {until:?}"
    );
    assert!(c.try_send(until).is_ok());
}

#[test]
fn after_a_decrease_the_pace_returns_to_the_estimate_then_probes_above_it() {
    let mut c = Controller::resume_from(100.0, 200.0);
    assert_eq!(c.rate(), 100.0 * RESUME_SHARE);
    assert_eq!(c.limit_estimate(), Some(100.0));
    // One cycle is 300 requests at 100/s: 3 s back to the estimate, concave (quick first).
    let t0 = secs(7.0);
    send_eagerly(&mut c, t0, t0 + secs(1.5));
    assert!((97.0..100.0).contains(&c.rate()), "half way: {}", c.rate());
    send_eagerly(&mut c, t0 + secs(1.5), t0 + secs(3.0));
    assert!((99.9..=100.1).contains(&c.rate()), "{}", c.rate());
    send_eagerly(&mut c, t0 + secs(3.0), t0 + secs(4.5));
    assert!(
        (100.0..102.0).contains(&c.rate()),
        "probing gently: {}",
        c.rate()
    );
    send_eagerly(&mut c, t0 + secs(4.5), t0 + secs(6.0));
    assert!(
        (109.0..=111.0).contains(&c.rate()),
        "+10 % one cycle on: {}",
        c.rate()
    );
}

#[test]
fn rises_are_reported_in_steps_and_every_decrease_is() {
    let mut c = Controller::new(PaceConfig::default());
    let mut now = Duration::ZERO;
    let mut reported = vec![c.rate()];
    while now < secs(2.0) {
        match c.try_send(now) {
            Ok(sent) => reported.extend(c.on_success(sent, now)),
            Err(at) => now = at,
        }
    }
    assert!(reported.len() > 5, "{reported:?}");
    for w in reported.windows(2) {
        assert!(w[1] >= w[0] * 1.05, "{reported:?}");
    }
    let sent = c.try_send(now + secs(1.0)).unwrap();
    assert_eq!(c.on_throttle(sent, now + secs(1.1)), Some(c.rate()));
}

#[test]
fn a_pinned_pace_never_moves() {
    let mut c = Controller::new(PaceConfig::pinned(7.0));
    let mut now = Duration::ZERO;
    for i in 0..200 {
        match c.try_send(now) {
            Ok(sent) if i % 3 == 0 => assert_eq!(c.on_throttle(sent, now + ms(50)), None),
            Ok(sent) => assert_eq!(c.on_success(sent, now + ms(50)), None),
            Err(at) => now = at,
        }
        assert_eq!(c.rate(), 7.0);
    }
    assert!(c.is_pinned());
    assert_eq!(c.limit_estimate(), None);
}

#[test]
fn the_windows_running_total_matches_a_recount() {
    let mut w = Window::new();
    let mut rng = fastrand::Rng::with_seed(3);
    let mut now = 0;
    let mut sent = Vec::new();
    for _ in 0..20_000 {
        now += rng.u64(0..30_000_000);
        if rng.u8(..) < 5 {
            now += rng.u64(0..3 * SECOND_NS);
        }
        w.add_sent(now);
        sent.push(now);
        if rng.bool() {
            let i = rng.usize(sent.len().saturating_sub(300)..sent.len());
            w.add_refused(sent[i]);
        }
        let last = now / BUCKET_NS;
        let recount: u64 = (last.saturating_sub(WINDOW - 1)..=last)
            .map(|i| {
                let (s, r) = w.get(i);
                u64::from(s - r)
            })
            .sum();
        assert_eq!(w.total, recount);
        assert_eq!(w.accepted_in_second_to(now), recount);
    }
}

#[tokio::test]
async fn the_pacer_serves_many_tasks_at_once() {
    let pacer = Arc::new(Pacer::new(PaceConfig::pinned(1e9)));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let pacer = pacer.clone();
            tokio::spawn(async move {
                let mut last = Duration::ZERO;
                for _ in 0..500 {
                    let sent = pacer.acquire().await;
                    assert!(sent.at() >= last);
                    last = sent.at();
                    assert_eq!(pacer.on_success(sent), None);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(pacer.rate(), 1e9);
    assert!(pacer.is_pinned());
}

#[tokio::test]
async fn the_pacer_hands_outcomes_to_its_controller() {
    let pacer = Pacer::resume_from(50.0, 100.0);
    assert_eq!(pacer.rate(), 40.0);
    assert_eq!(pacer.limit_estimate(), Some(50.0));
    let early = pacer.acquire().await;
    let late = pacer.acquire().await;
    assert!(late.at() > early.at(), "spaced by the pace");
    let lower = pacer.on_throttle(late).expect("a decrease");
    assert_eq!(pacer.rate(), lower);
    assert!(lower < 40.0);
    assert_eq!(pacer.on_throttle(early), None, "sent before the decrease");
    assert!(!pacer.is_pinned());
}

// ---- The simulation -------------------------------------------------------------------------

/// Enough calls in flight that the pace, not the callers, sets the rate: 2.5 × limit ×
/// latency (the fast start overshoots the limit by up to ~35 %, and latency is jittered).
fn concurrency_for(limit: u32, latency_ms: u64) -> usize {
    ((2.5 * f64::from(limit) * latency_ms as f64 / 1000.0).ceil() as usize).max(8)
}

fn adaptive(sc: &Scenario) -> Outcome {
    run(sc, Controller::new(PaceConfig::default()))
}

#[test]
fn the_adaptive_pace_reaches_the_limit_with_few_throttles() {
    let mut failures = Vec::new();
    for limit in [10, 20, 50, 100] {
        for latency in [50, 100] {
            for (requests, floor) in [(600, 0.85), (2000, 0.90)] {
                let k = concurrency_for(limit, latency);
                for seed in 1..=3 {
                    let mut sc = Scenario::new(limit, latency, k, requests);
                    sc.seed = seed;
                    let out = adaptive(&sc);
                    let achieved = out.achieved(f64::from(limit));
                    if achieved < floor || out.throttled_share() > 0.03 {
                        failures.push(format!(
                            "R={limit} L={latency}ms K={k} N={requests} seed {seed}: \
                             {achieved:.3} of the limit, {:.1} % throttled",
                            100.0 * out.throttled_share()
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_limit_estimate_is_the_servers_limit() {
    for limit in [10, 20, 50, 100] {
        let out = adaptive(&Scenario::new(
            limit,
            100,
            concurrency_for(limit, 100),
            2000,
        ));
        let estimate = out.final_limit.expect("throttled at least once");
        assert!(
            (estimate - f64::from(limit)).abs() <= 1.0,
            "R={limit}: {estimate}"
        );
    }
}

#[test]
fn after_the_fast_start_overshoots_the_server_refuses_nothing_sent_after_the_decrease() {
    // The fast start fills the server's second with a burst; sent at the lower pace straight
    // away, the next requests would meet a full window until the burst ages out.
    for limit in [20, 50, 100] {
        let out = adaptive(&Scenario::new(limit, 100, concurrency_for(limit, 100), 600));
        let (decrease, _, _) = *out
            .trace
            .iter()
            .find(|e| e.2.is_some())
            .expect("a decrease");
        let refused = out.throttled_between(decrease, decrease + secs(2.0));
        assert!(
            refused <= 1,
            "R={limit}: {refused} refused after the decrease"
        );
    }
}

#[test]
fn a_server_still_full_of_someone_elses_requests_costs_only_a_few_seconds() {
    // An earlier run (or another client) used the whole second, or all but two of it, just
    // before this run starts.
    for prefill in [50, 48] {
        let mut sc = Scenario::new(50, 100, concurrency_for(50, 100), 2000);
        sc.prefill = prefill;
        let out = adaptive(&sc);
        let achieved = out.achieved(50.0);
        assert!(achieved >= 0.9, "prefill {prefill}: {achieved}");
        assert!(
            out.throttled_share() <= 0.03,
            "prefill {prefill}: {}",
            out.throttled
        );
    }
}

#[test]
fn a_pinned_pace_never_moves_in_simulation() {
    // Above the limit: throttled again and again, and still the same pace.
    let out = run(
        &Scenario::new(20, 100, 16, 300),
        Controller::new(PaceConfig::pinned(30.0)),
    );
    assert!(out.throttled > 50, "{}", out.throttled);
    assert!(
        out.trace
            .iter()
            .all(|&(_, rate, limit)| rate == 30.0 && limit.is_none())
    );
    // Below it: exactly that pace, nothing refused.
    let out = run(
        &Scenario::new(20, 100, 16, 300),
        Controller::new(PaceConfig::pinned(15.0)),
    );
    assert_eq!(out.throttled, 0);
    let achieved = out.achieved(15.0);
    assert!((0.97..=1.0).contains(&achieved), "{achieved}");
}

#[test]
fn the_pace_follows_the_limit_down_within_seconds() {
    let drop = secs(10.0);
    let mut sc = Scenario::new(50, 100, concurrency_for(50, 100), 2000);
    sc.limit_change = Some((drop, 20));
    let out = adaptive(&sc);
    let before = out.rate_at(drop);
    assert!(before > 45.0, "at the limit before the drop: {before}");
    let after = out.rate_at(drop + secs(3.0));
    assert!(after <= 20.0, "3 s after the drop: {after}");
    let settled = out.elapsed;
    let throttled_later = out.throttled_between(drop + secs(3.0), settled);
    let admitted = out.admitted_rate(drop + secs(3.0), settled);
    assert!(admitted >= 18.0, "{admitted}/s of 20 once settled");
    assert!(
        throttled_later as f64 <= 0.01 * admitted * (settled - drop).as_secs_f64(),
        "{throttled_later} throttled after settling"
    );
    let estimate = out.final_limit.unwrap();
    assert!((19.0..=21.0).contains(&estimate), "{estimate}");
}

#[test]
fn a_run_held_back_by_its_concurrency_neither_inflates_the_pace_nor_is_throttled() {
    // 4 calls in flight at 100 ms: at most ~40/s, well under the limit of 100.
    let mut sc = Scenario::new(100, 100, 4, 1000);
    sc.jitter = Duration::ZERO;
    let out = adaptive(&sc);
    assert_eq!(out.throttled, 0);
    let top = out.trace.iter().map(|e| e.1).fold(0.0, f64::max);
    assert!(top <= 2.0 * 40.0 + 1.0, "pace grew to {top}");
    let achieved = out.achieved(40.0);
    assert!(achieved > 0.95, "{achieved}");
}

#[test]
fn a_resumed_run_starts_near_the_remembered_limit() {
    let sc = Scenario::new(100, 100, concurrency_for(100, 100), 600);
    let cold = adaptive(&sc);
    let warm = run(&sc, Controller::resume_from(100.0, DEFAULT_MAX));
    assert!(
        warm.elapsed < cold.elapsed,
        "{:?} vs {:?}",
        warm.elapsed,
        cold.elapsed
    );
    assert!(warm.throttled <= cold.throttled);
    assert!(warm.achieved(100.0) > 0.9, "{}", warm.achieved(100.0));
}

#[test]
fn a_token_bucket_server_is_paced_too() {
    // Not the emulator's model, but a common one: refills 20/s, holds 20 (or 2).
    for burst in [20, 2] {
        let mut sc = Scenario::new(20, 100, concurrency_for(20, 100), 2000);
        sc.bucket = Some(burst);
        let out = adaptive(&sc);
        let achieved = out.achieved(20.0);
        assert!(achieved >= 0.9, "burst {burst}: {achieved}");
        assert!(
            out.throttled_share() <= 0.03,
            "burst {burst}: {}",
            out.throttled_share()
        );
    }
}

/// The table in the report: `cargo test --lib pace::tests::simulation_table -- --ignored
/// --nocapture`.
#[test]
#[ignore]
fn simulation_table() {
    println!("| R | L | K | N | achieved / R | throttled |");
    println!("|---|---|---|---|---|---|");
    for requests in [600, 2000] {
        for limit in [10, 20, 50, 100] {
            for latency in [50, 100] {
                let k = concurrency_for(limit, latency);
                let runs: Vec<Outcome> = (1..=3)
                    .map(|seed| {
                        let mut sc = Scenario::new(limit, latency, k, requests);
                        sc.seed = seed;
                        adaptive(&sc)
                    })
                    .collect();
                let a: Vec<f64> = runs.iter().map(|o| o.achieved(f64::from(limit))).collect();
                let t: Vec<f64> = runs.iter().map(|o| 100.0 * o.throttled_share()).collect();
                let (amin, amax) = (
                    a.iter().cloned().fold(9.0, f64::min),
                    a.iter().cloned().fold(0.0, f64::max),
                );
                let (tmin, tmax) = (
                    t.iter().cloned().fold(99.0, f64::min),
                    t.iter().cloned().fold(0.0, f64::max),
                );
                println!(
                    "| {limit} | {latency} ms | {k} | {requests} | {amin:.3}–{amax:.3} | {tmin:.2}–{tmax:.2} % |"
                );
            }
        }
    }
}
