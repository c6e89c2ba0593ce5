//! Tests of the pacer's decisions, in virtual time.

use std::time::Duration;

use super::sim::{Scenario, run};
use super::*;

fn concurrency_for(limit: u32, latency_ms: u64) -> usize {
    // Twice limit × latency (plus jitter), so the pace, not the workers, sets the rate.
    ((2.5 * f64::from(limit) * latency_ms as f64 / 1000.0).ceil() as usize).max(8)
}

#[test]
fn table() {
    for &requests in &[600usize, 2000] {
        for &limit in &[10u32, 20, 50, 100] {
            for &latency in &[50u64, 100] {
                let k = concurrency_for(limit, latency);
                let sc = Scenario::new(limit, latency, k, requests);
                let out = run(&sc, Controller::new(PaceConfig::default()));
                println!(
                    "N={requests:5} R={limit:3} L={latency:3}ms K={k:3}: achieved {:.3} throttled {:.2}% ({}) limit est {:?}",
                    out.achieved(f64::from(limit)),
                    100.0 * out.throttled_share(),
                    out.throttled,
                    out.final_limit
                );
            }
        }
    }
}

#[test]
fn debug_trace() {
    let limit: u32 = std::env::var("R")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let latency: u64 = std::env::var("L")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let k = concurrency_for(limit, latency);
    let spec = std::env::var("GRID").unwrap_or("10,500,0.9,0.7,150,0.1,0".into());
    let v: Vec<f64> = spec.split(',').map(|x| x.parse().unwrap()).collect();
    let t = Tuning {
        doubling: Duration::from_millis(v[1] as u64),
        doubling_exp: v[6],
        back_off: v[2],
        cut: v[3],
        cycle_requests: v[4],
        probe: v[5],
        first_provisional: v.get(7).is_none_or(|&x| x > 0.0),
    };
    let cfg = PaceConfig {
        start: v[0],
        ..PaceConfig::default()
    };
    let mut sc = Scenario::new(limit, latency, k, n);
    sc.bucket = std::env::var("BUCKET").ok().and_then(|s| s.parse().ok());
    let out = run(&sc, Controller::new(cfg).tuned(t));
    let mut last = (0.0, None);
    let mut next_print = 0.0;
    for (t, r, l) in &out.trace {
        if (*r < last.0) || *l != last.1 || t.as_secs_f64() >= next_print {
            println!("{:8.3} rate {:7.2} limit {:?}", t.as_secs_f64(), r, l);
            next_print = t.as_secs_f64() + 0.25;
        }
        last = (*r, *l);
    }
    let mut s = 0.0;
    while s < out.elapsed.as_secs_f64() {
        let a = Duration::from_secs_f64(s);
        let b = Duration::from_secs_f64(s + 0.5);
        println!(
            "[{s:5.1}] admitted/s {:6.1} throttled {}",
            out.admitted_rate(a, b),
            out.throttled_between(a, b)
        );
        s += 0.5;
    }
    println!(
        "achieved {:.3} throttled {}",
        out.achieved(f64::from(limit)),
        out.throttled
    );
}

#[test]
fn grid() {
    let Ok(spec) = std::env::var("GRID") else {
        return;
    };
    // GRID="start,doubling_ms,back_off,cut,cycle,probe"
    let v: Vec<f64> = spec.split(',').map(|x| x.parse().unwrap()).collect();
    let t = Tuning {
        doubling: Duration::from_millis(v[1] as u64),
        doubling_exp: v[6],
        back_off: v[2],
        cut: v[3],
        cycle_requests: v[4],
        probe: v[5],
        first_provisional: v.get(7).is_none_or(|&x| x > 0.0),
    };
    let mut worst = (f64::MAX, f64::MAX, 0.0f64);
    for &requests in &[600usize, 2000] {
        for &limit in &[10u32, 20, 50, 100] {
            for &latency in &[50u64, 100] {
                for seed in 1..4 {
                    let k = concurrency_for(limit, latency);
                    let mut sc = Scenario::new(limit, latency, k, requests);
                    sc.seed = seed;
                    let cfg = PaceConfig {
                        start: v[0],
                        ..PaceConfig::default()
                    };
                    let out = run(&sc, Controller::new(cfg).tuned(t));
                    let a = out.achieved(f64::from(limit));
                    if requests == 600 {
                        worst.0 = worst.0.min(a)
                    } else {
                        worst.1 = worst.1.min(a)
                    }
                    worst.2 = worst.2.max(out.throttled_share());
                    if seed == 1 {
                        println!(
                            "N={requests:5} R={limit:3} L={latency:3}ms K={k:3}: achieved {:.3} throttled {:.2}% ({})",
                            a,
                            100.0 * out.throttled_share(),
                            out.throttled
                        );
                    }
                }
            }
        }
    }
    println!(
        "worst: 600 {:.3} 2000 {:.3} throttled {:.2}%",
        worst.0,
        worst.1,
        100.0 * worst.2
    );
}

#[test]
fn variants() {
    let Ok(spec) = std::env::var("GRID") else {
        return;
    };
    let v: Vec<f64> = spec.split(',').map(|x| x.parse().unwrap()).collect();
    let t = Tuning {
        doubling: Duration::from_millis(v[1] as u64),
        doubling_exp: v[6],
        back_off: v[2],
        cut: v[3],
        cycle_requests: v[4],
        probe: v[5],
        first_provisional: v.get(7).is_none_or(|&x| x > 0.0),
    };
    let cfg = PaceConfig {
        start: v[0],
        ..PaceConfig::default()
    };
    for &requests in &[600usize, 2000] {
        for &limit in &[2u32, 5, 10, 20, 50, 100, 150] {
            for variant in ["spread", "tightK", "bucket1s", "bucket2", "nojitter"] {
                let mut sc = Scenario::new(limit, 100, concurrency_for(limit, 100), requests);
                match variant {
                    "spread" => {
                        sc.latency = Duration::from_millis(50);
                        sc.jitter = Duration::from_millis(50);
                    }
                    "tightK" => sc.concurrency = ((f64::from(limit) * 0.13).ceil() as usize).max(2),
                    "bucket1s" => sc.bucket = Some(limit),
                    "bucket2" => sc.bucket = Some(2),
                    _ => {
                        sc.jitter = Duration::ZERO;
                        sc.arrival_jitter = Duration::ZERO;
                    }
                }
                let out = run(&sc, Controller::new(cfg).tuned(t));
                println!(
                    "N={requests:5} R={limit:3} {variant:9} K={:3}: achieved {:.3} throttled {:.2}% ({}) est {:?}",
                    sc.concurrency,
                    out.achieved(f64::from(limit)),
                    100.0 * out.throttled_share(),
                    out.throttled,
                    out.final_limit
                );
            }
        }
    }
}
