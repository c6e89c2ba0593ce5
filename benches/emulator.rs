//! Throughput of the MTurk emulator: SendBonus over many concurrent keep-alive loopback
//! connections, with no faults and no signature checking; then ListBonusPayments for one
//! assignment once the ledger holds over a million payments (it must not scan them).
//!
//! The client is a minimal HTTP/1.1 writer/reader over `TcpStream` with pre-built requests, so
//! the figure measures the emulator rather than a client stack.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use payout::emulator::{EmulatorConfig, RunningEmulator};
use payout::money::Cents;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 32;

fn assignment(i: usize) -> String {
    format!("3BENCH{i:024}")
}

fn send_bonus_request(i: usize) -> Vec<u8> {
    let body = format!(
        r#"{{"WorkerId":"A143XRCI1YXAFE","AssignmentId":"{}","BonusAmount":"0.01","Reason":"benchmark"}}"#,
        assignment(i)
    );
    api_request("SendBonus", &body)
}

fn list_request(i: usize) -> Vec<u8> {
    let body = format!(r#"{{"AssignmentId":"{}","MaxResults":100}}"#, assignment(i));
    api_request("ListBonusPayments", &body)
}

fn api_request(operation: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: MTurkRequesterServiceV20170117.{operation}\r\n\
         X-Amz-Date: 20240101T000000Z\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKIDBENCH/20240101/us-east-1/mturk-requester/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=00\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends one request and reads exactly one response; panics unless it is a 200.
async fn round_trip(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) {
    stream.write_all(request).await.expect("write");
    buf.clear();
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).expect("ascii head");
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("content-length");
            if buf.len() >= end + 4 + length {
                return;
            }
        }
        let n = stream.read_buf(buf).await.expect("read");
        assert!(n > 0, "server closed the connection");
    }
}

/// `total` SendBonus requests spread over the connections; returns the wall time.
async fn burst(addr: SocketAddr, total: u64) -> Duration {
    let per_connection = total.div_ceil(CONNECTIONS as u64);
    let mut streams = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        streams.push(s);
    }
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(CONNECTIONS);
    for (i, mut stream) in streams.into_iter().enumerate() {
        let request = send_bonus_request(i);
        tasks.push(tokio::spawn(async move {
            let mut buf = Vec::with_capacity(1024);
            for _ in 0..per_connection {
                round_trip(&mut stream, &request, &mut buf).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    start
        .elapsed()
        .mul_f64(total as f64 / (per_connection * CONNECTIONS as u64) as f64)
}

fn send_bonus_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = EmulatorConfig {
        // Enough for every bonus the benchmark sends.
        balance: Cents(u64::MAX / 4),
        ..EmulatorConfig::default()
    };
    let emulator = runtime
        .block_on(RunningEmulator::start(
            config,
            SocketAddr::from(([127, 0, 0, 1], 0)),
        ))
        .expect("emulator starts");
    let addr: SocketAddr = emulator
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("address");

    // One plain figure, independent of criterion's statistics.
    let n = 50_000;
    let took = runtime.block_on(burst(addr, n));
    println!(
        "emulator: {n} SendBonus over {CONNECTIONS} connections in {took:.2?} = {:.0} requests/s",
        n as f64 / took.as_secs_f64()
    );

    let mut group = c.benchmark_group("emulator");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(1));
    group.bench_function("send_bonus_32_connections", |b| {
        b.iter_custom(|iters| runtime.block_on(burst(addr, iters)));
    });
    group.finish();

    // Listing one assignment must cost a page, not the ledger: fill it past a million first.
    let paid = emulator.handle().stats().payments;
    if paid < 1_000_000 {
        runtime.block_on(burst(addr, 1_000_000 - paid));
    }
    let mut group = c.benchmark_group("emulator");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(1));
    group.bench_function("list_bonus_payments_page_of_100_1m_ledger", |b| {
        let mut stream = runtime.block_on(TcpStream::connect(addr)).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let request = list_request(0);
        let mut buf = Vec::with_capacity(16 * 1024);
        b.iter(|| runtime.block_on(round_trip(&mut stream, &request, &mut buf)));
    });
    group.finish();

    let stats = emulator.handle().stats();
    println!(
        "emulator: {} payments, peak {} requests in one second, resident memory {}",
        stats.payments,
        stats.max_requests_in_1s,
        resident_memory().unwrap_or_else(|| "unknown".into())
    );
    runtime.block_on(emulator.shutdown());
}

/// This process's resident memory as Linux reports it (`VmRSS`), for a rough bytes-per-payment.
fn resident_memory() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    Some(line.trim_start_matches("VmRSS:").trim().to_owned())
}

criterion_group!(benches, send_bonus_throughput);
criterion_main!(benches);
