//! Benchmarks of payout's own pipeline through the library: reading + validating + planning a
//! CSV, recording it in a fresh journal, and paying a batch end to end (journal with fsync,
//! engine, real SDK) into the emulator on 127.0.0.1. The binary's own figures at scale are in
//! `scale.rs` and `end_to_end.rs`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use payout::emulator::{EmulatorConfig, RunningEmulator};
use payout::engine::{EngineConfig, QualMap, Run, Silent, StopSignal, execute};
use payout::input::{InputOptions, Row, parse_bytes};
use payout::journal::{BatchKind, Journal};
use payout::money::Cents;
use payout::op::Operation;
use payout::pace::{PaceConfig, Pacer};
use payout::plan::{NoPrior, PlanConfig, plan_rows};
use payout::platform::{CredentialSource, MturkPlatform, Timeouts};
use payout::target::Target;

fn config() -> PlanConfig {
    PlanConfig {
        kind: BatchKind::Bonus,
        target: Target::Emulator,
        endpoint: None,
        allow_repeat: false,
        allow_overlap: false,
        allow_duplicates: false,
    }
}

fn csv(n: usize) -> String {
    let mut s = String::from("WorkerId,AssignmentId,BonusAmount,Reason\n");
    for i in 0..n {
        s.push_str(&format!(
            "A{:012},3ASSIGN{:023},{}.{:02},\"Bonus for round {}, thanks!\"\n",
            i,
            i,
            i % 5,
            1 + i % 99,
            i % 7
        ));
    }
    s
}

fn input(c: &mut Criterion) {
    let mut g = c.benchmark_group("input");
    for (n, name) in [
        (10_000, "parse_validate_plan_10k_rows"),
        (100_000, "parse_validate_plan_100k_rows"),
    ] {
        let text = csv(n);
        g.throughput(Throughput::Elements(n as u64));
        if n > 10_000 {
            g.sample_size(10);
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                let rows = parse_bytes(text.as_bytes(), "bench.csv", &InputOptions::default())
                    .expect("valid");
                plan_rows(rows, config(), &mut NoPrior).expect("plan")
            })
        });
    }
    g.finish();
}

/// Planning and recording 100,000 rows in a fresh journal: the SQLite side of an import (the
/// binary re-reads the file as it imports; here the rows are already in memory).
fn import(c: &mut Criterion) {
    let n = 100_000;
    let rows: Vec<Row> =
        parse_bytes(csv(n).as_bytes(), "bench.csv", &InputOptions::default()).expect("valid");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("import");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    let mut round = 0u32;
    g.bench_function("plan_and_record_100k_rows", |b| {
        b.iter_batched(
            || {
                round += 1;
                let path = dir.path().join(format!("import{round}.sqlite"));
                (Journal::open(&path).expect("journal"), rows.clone(), path)
            },
            |(mut journal, rows, path)| {
                payout::plan::plan_and_record(&mut journal, rows, config(), "bench.csv")
                    .expect("batch");
                drop(journal);
                for p in
                    std::iter::once(path.clone()).chain(payout::journal::companion_paths(&path))
                {
                    let _ = std::fs::remove_file(p);
                }
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn pay(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let emu = rt
        .block_on(RunningEmulator::start(
            // Enough money for every round: a run that stops early would measure nothing.
            EmulatorConfig {
                balance: Cents(1_000_000_000_000),
                ..EmulatorConfig::default()
            },
            ([127, 0, 0, 1], 0).into(),
        ))
        .expect("emulator");
    let platform = Arc::new(
        rt.block_on(MturkPlatform::connect(
            &emu.url(),
            CredentialSource::Fixed {
                access_key_id: "AKIDBENCH".into(),
                secret_access_key: "bench".into(),
            },
            Timeouts {
                connect: Duration::from_secs(5),
                call: Duration::from_secs(10),
            },
        ))
        .expect("client"),
    );
    let n = 1000;
    let rows: Vec<Row> =
        parse_bytes(csv(n).as_bytes(), "bench.csv", &InputOptions::default()).expect("valid");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut g = c.benchmark_group("pay");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    let mut round = 0u32;
    g.bench_function("1000_bonuses_journaled_concurrency_32", |b| {
        b.iter(|| {
            // A fresh journal and a new reason each round: every payment is really made.
            round += 1;
            let mut rows = rows.clone();
            for r in &mut rows {
                if let Operation::Bonus { reason, .. } = &mut r.op {
                    *reason = format!("round {round}");
                }
            }
            let mut journal =
                Journal::open(&dir.path().join(format!("j{round}.sqlite"))).expect("journal");
            let (batch, _) =
                payout::plan::plan_and_record(&mut journal, rows, config(), "bench.csv")
                    .expect("batch");
            let writer = Arc::new(journal.into_writer());
            let cfg = EngineConfig {
                concurrency: 32,
                pace: PaceConfig::pinned(100_000.0),
                ..EngineConfig::default()
            };
            let before = emu.handle().stats().payments;
            rt.block_on(execute(Run {
                platform: platform.clone(),
                journal: writer,
                batch,
                quals: QualMap::default(),
                cfg,
                pacer: Pacer::new(PaceConfig::pinned(100_000.0)),
                reporter: Arc::new(Silent),
                stop: Arc::new(StopSignal::default()),
            }))
            .expect("run");
            assert_eq!(
                emu.handle().stats().payments - before,
                n as u64,
                "every bonus paid"
            );
        })
    });
    g.finish();
    assert!(emu.handle().double_payments().is_empty());
}

criterion_group!(benches, input, import, pay);
criterion_main!(benches);
