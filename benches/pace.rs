//! The adaptive pacer, in real time: its own cost per call, and how close it runs to the limit
//! of the MTurk emulator's throttle through the real `aws-sdk-mturk` client.
//!
//! The emulator part prints, for R = 10, 20, 50, 100 requests/s (sliding one-second window)
//! and 50–100 ms latency, the payments per second achieved as a share of R and the share of
//! requests throttled. Each run takes N / R seconds, so R = 10 and 20 make 600 payments and
//! R = 50 and 100 make 2,000 (and 600); `PACE_BENCH_REQUESTS=N` makes N in every run, and
//! `PACE_BENCH_LIMITS=10,100` picks the limits. The virtual-time simulation in
//! `src/pace/tests.rs` covers every combination at 600 and 2,000.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use payout::emulator::{EmulatorConfig, RunningEmulator};
use payout::ids::{AssignmentId, WorkerId};
use payout::money::Cents;
use payout::op::Operation;
use payout::pace::{PaceConfig, Pacer};
use payout::platform::{Call, CredentialSource, ErrorClass, MturkPlatform, Platform, Timeouts};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// What the pacer adds per call when it never has to wait.
fn hot_path(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("pace");
    group.bench_function("acquire+on_success, one task", |b| {
        let pacer = Pacer::new(PaceConfig::pinned(1e12));
        b.iter_custom(|n| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..n {
                    let sent = pacer.acquire().await;
                    pacer.on_success(sent);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("acquire+on_success, 8 tasks", |b| {
        let pacer = Arc::new(Pacer::new(PaceConfig::pinned(1e12)));
        b.iter_custom(|n| {
            rt.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = (0..8)
                    .map(|_| {
                        let pacer = pacer.clone();
                        tokio::spawn(async move {
                            for _ in 0..n.div_ceil(8) {
                                let sent = pacer.acquire().await;
                                pacer.on_success(sent);
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("task");
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

struct Run {
    limit: u32,
    concurrency: usize,
    requests: usize,
    elapsed: Duration,
    throttled: u64,
    server_throttled: u64,
    final_rate: f64,
    estimate: Option<f64>,
}

/// `requests` SendBonus calls through the pacer at `concurrency`, against an emulator that
/// throttles above `limit` per second; every throttled call is retried as the runner does
/// (full-jitter backoff from 250 ms).
async fn against_emulator(limit: u32, concurrency: usize, requests: usize) -> Run {
    let config = EmulatorConfig {
        latency: Duration::from_millis(50),
        latency_jitter: Duration::from_millis(50),
        throttle_rps: Some(limit),
        balance: Cents(u64::MAX / 4),
        ..EmulatorConfig::default()
    };
    let emulator = RunningEmulator::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("emulator starts");
    let platform = Arc::new(
        MturkPlatform::connect(
            &emulator.url(),
            CredentialSource::Fixed {
                access_key_id: "AKIDPACEBENCH".into(),
                secret_access_key: "secret".into(),
            },
            Timeouts {
                connect: Duration::from_secs(10),
                call: Duration::from_secs(10),
            },
        )
        .await
        .expect("client"),
    );
    let pacer = Arc::new(Pacer::new(PaceConfig::default()));
    let next = Arc::new(AtomicUsize::new(0));
    let throttled = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (platform, pacer, next, throttled) = (
                platform.clone(),
                pacer.clone(),
                next.clone(),
                throttled.clone(),
            );
            tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(w as u64);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= requests {
                        return;
                    }
                    let op = Operation::Bonus {
                        worker: WorkerId::parse("A143XRCI1YXAFE").unwrap(),
                        assignment: AssignmentId::parse(&format!("3PACE{i:025}")).unwrap(),
                        amount: Cents(1),
                        reason: "pace benchmark".into(),
                    };
                    let token = format!("pace-{limit}-{i}");
                    let call = Call {
                        op: &op,
                        qualification: None,
                        token: Some(&token),
                    };
                    let mut k = 0;
                    loop {
                        let sent = pacer.acquire().await;
                        match platform.apply(call).await {
                            Ok(()) => {
                                pacer.on_success(sent);
                                break;
                            }
                            Err(e) if e.class == ErrorClass::Throttled => {
                                pacer.on_throttle(sent);
                                throttled.fetch_add(1, Ordering::Relaxed);
                                k += 1;
                                let ceiling = Duration::from_millis(250 << (k - 1).min(6));
                                tokio::time::sleep(ceiling.mul_f64(rng.f64())).await;
                            }
                            Err(e) => panic!("payment {i}: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    let elapsed = start.elapsed();
    let stats = emulator.handle().stats();
    emulator.shutdown().await;
    Run {
        limit,
        concurrency,
        requests,
        elapsed,
        throttled: throttled.load(Ordering::Relaxed),
        server_throttled: stats.throttled,
        final_rate: pacer.rate(),
        estimate: pacer.limit_estimate(),
    }
}

fn emulator_limits(_: &mut Criterion) {
    let fixed: Option<usize> = std::env::var("PACE_BENCH_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok());
    let limits: Vec<u32> = std::env::var("PACE_BENCH_LIMITS")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 20, 50, 100]);
    let rt = runtime();
    println!("pace vs emulator (sliding 1 s window, 50–100 ms latency, adaptive from 10/s):");
    for limit in limits {
        // 2.5 × limit × latency (at most 100 ms), as the simulation uses.
        let concurrency = ((f64::from(limit) * 0.25).ceil() as usize).max(8);
        let sizes = match fixed {
            Some(n) => vec![n],
            None if limit >= 50 => vec![600, 2000],
            None => vec![600],
        };
        for requests in sizes {
            let r = rt.block_on(against_emulator(limit, concurrency, requests));
            println!(
                "  R={:3} K={:2} N={:4}: {:6.2?} → {:.3} of R, {:.2} % throttled ({} by the client, {} by the server); pace {:.1}/s, estimate {:?}",
                r.limit,
                r.concurrency,
                r.requests,
                r.elapsed,
                r.requests as f64 / r.elapsed.as_secs_f64() / f64::from(r.limit),
                100.0 * r.throttled as f64 / r.requests as f64,
                r.throttled,
                r.server_throttled,
                r.final_rate,
                r.estimate,
            );
        }
    }
}

criterion_group!(benches, hot_path, emulator_limits);
criterion_main!(benches);
