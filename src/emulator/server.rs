//! The HTTP side: the hyper server, the per-request pipeline (auth → throttle → faults before →
//! apply → faults after), the `/_emulator/*` inspection endpoints, and the handles tests hold.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, DATE, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::{AccountMode, AfterApplyStatus, EmulatorConfig, FaultScope};
use super::errors::ApiError;
use super::guesses::{self, Site};
use super::ops::{self, Op, UNKNOWN_OPERATION};
use super::sigv4::{self, AuthFailure};
use super::state::{Payment, QualificationGrant, State, Stats, real_now_ms};
use crate::money::Cents;

const JSON_11: &str = "application/x-amz-json-1.1";
/// Far above any real MTurk request; bigger bodies are refused rather than buffered.
const MAX_BODY: usize = 1 << 20;

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled after every API request, for `EmulatorHandle::wait_for`.
    changed: Condvar,
    /// Fixed at start: verifying needs no lock.
    credentials: Option<(String, String)>,
    /// Origin of the monotonic clock used by the rate windows (not moved by `advance_clock`).
    started: Instant,
    request_ids: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not turn every later request into a panic too.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

use super::background::{Answer, DropConnection, accept_loop};

fn answer(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Answer {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn real_now_secs() -> i64 {
    (real_now_ms() / 1000) as i64
}

fn request_id(shared: &Shared) -> HeaderValue {
    let n = shared.request_ids.fetch_add(1, Ordering::Relaxed);
    // splitmix64 spreads a counter into something that looks like a UUID.
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let text = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        z >> 32,
        (z >> 16) & 0xffff,
        z & 0xfff,
        n & 0xfff,
        n & 0xffff_ffff_ffff
    );
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("0"))
}

/// An answer on the API path: the operation's JSON or an error body, and only the headers every
/// AWS JSON service sends (`x-amzn-RequestId`, `Content-Type`; hyper adds `Content-Length` and
/// `Date`). No `x-amzn-ErrorType` or `x-amzn-query-error`: see `guesses.rs`.
fn api_answer(shared: &Shared, outcome: Result<String, ApiError>, now_ms: u64) -> Answer {
    let (status, body) = match outcome {
        Ok(body) => (StatusCode::OK, body),
        Err(e) => (e.status, e.body(now_ms)),
    };
    let mut r = answer(status, JSON_11, body);
    r.headers_mut()
        .insert("x-amzn-requestid", request_id(shared));
    r
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Answer, DropConnection> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Ok(api_answer(&shared, Err(guesses::body_too_large()), 0));
        }
        // The client went away mid-body: nobody to answer.
        Err(_) => return Err(DropConnection),
    };
    let path = parts.uri.path();
    if path == "/" {
        api(&shared, &parts, &body).await
    } else if let Some(what) = path.strip_prefix("/_emulator/") {
        Ok(inspect(&shared, &parts, what))
    } else {
        Ok(api_answer(&shared, Err(guesses::unknown_path()), 0))
    }
}

async fn api(shared: &Shared, parts: &Parts, body: &[u8]) -> Result<Answer, DropConnection> {
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let op = if parts.method == Method::POST {
        ops::op_from_target(target)
    } else {
        None
    };
    let auth = sigv4::check(
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        &parts.headers,
        body,
        shared.credentials.as_ref(),
    );
    // Decoding and validation are pure: done before taking the lock.
    let parsed = match (op, &auth) {
        (Some(op), Ok(())) => Some(ops::parse(op, body)),
        _ => None,
    };
    let amz_date = parts
        .headers
        .get("x-amz-date")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let now_ns = shared.started.elapsed().as_nanos() as u64;
    let (verdict, delay, now_ms, server_date) = {
        let mut guard = shared.lock();
        let st = &mut *guard;
        st.count_request(op.map_or(UNKNOWN_OPERATION, Op::name), now_ns);
        let now_ms = st.now_ms();
        let mut delay = st.config.latency;
        let jitter = st.config.latency_jitter.as_nanos() as u64;
        if jitter > 0 {
            delay += Duration::from_nanos(st.rng.u64(0..jitter));
        }
        // Request times are checked whenever signatures are (as AWS does), and with a skew set
        // even when they are not; the clock is real time plus the skew.
        let checks_time = st.config.clock_skew_secs.is_some() || shared.credentials.is_some();
        let server_now =
            checks_time.then(|| real_now_secs() + st.config.clock_skew_secs.unwrap_or(0));
        // With a skewed clock the server also says what time it thinks it is, as AWS does.
        let skewed_date = st.config.clock_skew_secs.and(server_now);
        let inbound = Inbound {
            op,
            auth,
            amz_date: &amz_date,
            parsed,
        };
        let verdict = decide(st, inbound, server_now, now_ns, now_ms);
        (
            verdict,
            delay,
            now_ms,
            skewed_date.map(sigv4::format_http_date),
        )
    };
    shared.changed.notify_all();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut r = match verdict {
        Verdict::Answer(outcome) => api_answer(shared, outcome, now_ms),
        // A load balancer's own page, so no AWS request ID either.
        Verdict::GatewayTimeout => answer(
            StatusCode::GATEWAY_TIMEOUT,
            guesses::GATEWAY_TIMEOUT_CONTENT_TYPE,
            guesses::GATEWAY_TIMEOUT_BODY,
        ),
        Verdict::Drop => return Err(DropConnection),
    };
    // hyper writes its own (real-time) Date only when the answer has none.
    if let Some(date) = server_date.and_then(|d| HeaderValue::from_str(&d).ok()) {
        r.headers_mut().insert(DATE, date);
    }
    Ok(r)
}

/// What the lock-free part of the pipeline learnt about one API request.
struct Inbound<'a> {
    op: Option<Op>,
    /// The signature check (structure always, signature when credentials are configured).
    auth: Result<(), AuthFailure>,
    amz_date: &'a str,
    /// The decoded, validated input; `None` when unsigned or the operation is unknown.
    parsed: Option<Result<ops::Request, ApiError>>,
}

/// What becomes of one API request.
enum Verdict {
    /// A JSON answer (success or error).
    Answer(Result<String, ApiError>),
    /// A load balancer's 504 page (not JSON).
    GatewayTimeout,
    /// The connection is closed without an answer.
    Drop,
}

/// The per-request pipeline, under the lock: auth (signature, then request time when
/// `server_now` is set) → IAM (access denied) → throttle → (drop before | fault) → account
/// linked? → apply → (lost | fault after). The four faults draw from the one RNG, each only when
/// its rate is not zero, so turning one on leaves the others' picks unchanged.
fn decide(
    st: &mut State,
    inbound: Inbound<'_>,
    server_now: Option<i64>,
    now_ns: u64,
    now_ms: u64,
) -> Verdict {
    let Inbound {
        op,
        auth,
        amz_date,
        parsed,
    } = inbound;
    match auth {
        Err(AuthFailure::Unsigned(e)) => {
            st.stats.unsigned += 1;
            return Verdict::Answer(Err(e));
        }
        Err(AuthFailure::Rejected(e)) => {
            st.stats.bad_signatures += 1;
            return Verdict::Answer(Err(e));
        }
        Ok(()) => {}
    }
    if let Some(server_now) = server_now
        && let Err(e) = sigv4::check_request_time(amz_date, server_now)
    {
        st.stats.bad_signatures += 1;
        return Verdict::Answer(Err(e));
    }
    // IAM decides before MTurk sees the request; an unknown operation is refused as such.
    if st.config.account == AccountMode::AccessDenied
        && let Some(op) = op
    {
        return Verdict::Answer(Err(guesses::access_denied(op.name())));
    }
    if !st.admit(now_ns) {
        st.stats.throttled += 1;
        return Verdict::Answer(Err(ApiError::throttling()));
    }
    let faults = match st.config.fault_scope {
        FaultScope::All => true,
        FaultScope::Mutating => op.is_some_and(Op::is_mutating),
        FaultScope::Checks => op.is_some_and(Op::is_check),
    };
    if faults && st.roll(st.config.drop_before_rate) {
        st.stats.dropped_before_apply += 1;
        return Verdict::Drop;
    }
    if faults && st.roll(st.config.fault_rate) {
        st.stats.faulted += 1;
        return Verdict::Answer(Err(guesses::service_fault()));
    }
    let result = match parsed {
        Some(Ok(_)) if st.config.account == AccountMode::NotLinked => {
            Err(guesses::account_not_linked(Site::Production))
        }
        Some(Ok(_)) if st.config.account == AccountMode::NotLinkedSandbox => {
            Err(guesses::account_not_linked(Site::Sandbox))
        }
        Some(Ok(request)) => st.apply(request, now_ms),
        Some(Err(e)) => Err(e),
        None => Err(guesses::unknown_operation()),
    };
    if faults && st.roll(st.config.lost_rate) {
        st.stats.lost += 1;
        return Verdict::Drop;
    }
    if faults && st.roll(st.config.fault_after_rate) {
        st.stats.faulted_after_apply += 1;
        let status = match st.config.fault_after_status {
            AfterApplyStatus::Mixed => match st.rng.u8(0..3) {
                0 => AfterApplyStatus::ServiceFault,
                1 => AfterApplyStatus::ServiceUnavailable,
                _ => AfterApplyStatus::GatewayTimeout,
            },
            fixed => fixed,
        };
        return match status {
            AfterApplyStatus::ServiceUnavailable => {
                Verdict::Answer(Err(guesses::service_unavailable()))
            }
            AfterApplyStatus::GatewayTimeout => Verdict::GatewayTimeout,
            _ => Verdict::Answer(Err(guesses::service_fault())),
        };
    }
    Verdict::Answer(result)
}

fn query_param<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .uri
        .query()?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn inspect(shared: &Shared, parts: &Parts, what: &str) -> Answer {
    const JSON: &str = "application/json";
    let bad =
        |status: StatusCode, msg: &str| answer(status, JSON, json!({ "error": msg }).to_string());
    match (&parts.method, what) {
        (&Method::GET, "ledger") => {
            let st = shared.lock();
            let body = json!({
                "payments": st.ledger.all(),
                "double_payments": st.ledger.double_payments(),
            });
            answer(StatusCode::OK, JSON, body.to_string())
        }
        (&Method::GET, "stats") => {
            let stats = shared.lock().stats.clone();
            answer(StatusCode::OK, JSON, json!(stats).to_string())
        }
        (&Method::GET, "state") => {
            let st = shared.lock();
            let body = json!({
                "balance": st.balance,
                "spent": st.spent,
                "time_ms": st.now_ms(),
                "qualification_types": st.qual_types.iter().filter(|t| t.owned).map(ops::qual_type_json).collect::<Vec<_>>(),
                "qualifications": st.quals.values().collect::<Vec<_>>(),
                "blocks": st.blocks,
                "notifications": st.notifications.iter().map(|((worker, type_id), count)| json!({
                    "worker_id": worker,
                    "qualification_type_id": type_id,
                    "count": count,
                })).collect::<Vec<_>>(),
            });
            answer(StatusCode::OK, JSON, body.to_string())
        }
        (&Method::POST, "clock") => {
            let Some(secs) = query_param(parts, "advance_secs").and_then(|s| s.parse::<u64>().ok())
            else {
                return bad(
                    StatusCode::BAD_REQUEST,
                    "expected ?advance_secs=<whole seconds>",
                );
            };
            let mut st = shared.lock();
            st.advance_clock(Duration::from_secs(secs));
            answer(
                StatusCode::OK,
                JSON,
                json!({ "time_ms": st.now_ms() }).to_string(),
            )
        }
        (&Method::POST, "balance") => {
            let Some(amount) =
                query_param(parts, "amount").and_then(|s| Cents::parse_amount(s).ok())
            else {
                return bad(
                    StatusCode::BAD_REQUEST,
                    "expected ?amount=<dollars such as 12.34>",
                );
            };
            shared.lock().balance = amount;
            answer(
                StatusCode::OK,
                JSON,
                json!({ "balance": amount.to_api_string() }).to_string(),
            )
        }
        (_, "ledger" | "stats" | "state" | "clock" | "balance") => {
            bad(StatusCode::METHOD_NOT_ALLOWED, "wrong method")
        }
        _ => bad(StatusCode::NOT_FOUND, "no such emulator endpoint"),
    }
}

/// An emulator serving on the current tokio runtime.
pub struct RunningEmulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningEmulator {
    /// Binds `addr` (port 0 picks a free port) and starts serving.
    pub async fn start(config: EmulatorConfig, addr: SocketAddr) -> io::Result<RunningEmulator> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            credentials: config.credentials.clone(),
            state: Mutex::new(State::new(config)),
            changed: Condvar::new(),
            started: Instant::now(),
            request_ids: AtomicU64::new(0),
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(
            listener,
            {
                let shared = Arc::clone(&shared);
                move |req| handle(Arc::clone(&shared), req)
            },
            stop_rx,
        ));
        Ok(RunningEmulator {
            addr,
            shared,
            stop,
            task,
        })
    }

    /// `http://HOST:PORT` of the address really bound (a wildcard address stays a wildcard, so
    /// what is printed is what is exposed).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> EmulatorHandle {
        EmulatorHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Stops accepting, lets in-flight requests finish (at most a few seconds), ends the task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// An emulator on its own thread and tokio runtime, bound to 127.0.0.1 on a free port, for
/// synchronous tests. Dropping it stops the server and joins the thread.
pub type BackgroundEmulator = super::background::Background<EmulatorHandle>;

impl super::background::Served for RunningEmulator {
    type Handle = EmulatorHandle;
    fn url(&self) -> String {
        RunningEmulator::url(self)
    }
    fn handle(&self) -> EmulatorHandle {
        RunningEmulator::handle(self)
    }
    async fn stop(self) {
        self.shutdown().await
    }
}

impl BackgroundEmulator {
    pub fn start(config: EmulatorConfig) -> io::Result<BackgroundEmulator> {
        Self::start_at(config, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Like [`BackgroundEmulator::start`], on a given address.
    pub fn start_at(config: EmulatorConfig, addr: SocketAddr) -> io::Result<BackgroundEmulator> {
        Self::spawn("mturk-emulator", move || {
            RunningEmulator::start(config, addr)
        })
    }
}

/// A cheap, thread-safe view into a running emulator, usable from sync code.
#[derive(Clone)]
pub struct EmulatorHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorHandle").finish_non_exhaustive()
    }
}

impl EmulatorHandle {
    /// Every bonus actually paid, in order.
    pub fn ledger(&self) -> Vec<Payment> {
        self.shared.lock().ledger.all()
    }

    /// Each payment that repeats an earlier one (same worker, assignment, amount and reason),
    /// paired with the first.
    pub fn double_payments(&self) -> Vec<(Payment, Payment)> {
        self.shared.lock().ledger.double_payments()
    }

    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    pub fn balance(&self) -> Cents {
        self.shared.lock().balance
    }

    /// Bonus + fee paid so far (what `spend_limit` is compared with).
    pub fn spent(&self) -> Cents {
        self.shared.lock().spent
    }

    pub fn set_balance(&self, c: Cents) {
        self.shared.lock().balance = c;
    }

    pub fn set_spend_limit(&self, limit: Option<Cents>) {
        self.shared.lock().config.spend_limit = limit;
    }

    /// Changes latency, jitter, throttle, the fault rates, status and scope, the account mode,
    /// the clock skew or the spend limit live. Changes to balance, seed, credentials and known
    /// assignments are ignored.
    pub fn update_faults(&self, f: impl FnOnce(&mut EmulatorConfig)) {
        f(&mut self.shared.lock().config);
    }

    /// Moves the emulator clock (real time + offset) forward.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.lock().advance_clock(by);
    }

    /// The emulator clock, ms since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.shared.lock().now_ms()
    }

    /// Blocks until `pred(stats)` holds (true) or `timeout` passes (false). Woken after every
    /// API request; never polls.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Stats) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if pred(&st.stats) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = match self.shared.changed.wait_timeout(st, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// The worker's score if the qualification is currently granted.
    pub fn qualification_score(&self, type_id: &str, worker_id: &str) -> Option<i32> {
        self.qualification(type_id, worker_id)
            .filter(|q| q.status == super::state::QualificationStatus::Granted)
            .map(|q| q.integer_value)
    }

    /// The full record (granted or revoked, whether the worker was notified).
    pub fn qualification(&self, type_id: &str, worker_id: &str) -> Option<QualificationGrant> {
        self.shared
            .lock()
            .quals
            .get(&(type_id.to_owned(), worker_id.to_owned()))
            .cloned()
    }

    /// The ID of the caller's qualification type with exactly this name.
    pub fn qualification_type_id(&self, name: &str) -> Option<String> {
        self.shared
            .lock()
            .qual_types
            .iter()
            .find(|t| t.owned && t.name == name)
            .map(|t| t.id.clone())
    }

    /// Deletes the caller's qualification type named `name` with its grants, as a requester
    /// does on the website (`DeleteQualificationType`): afterwards no call knows it.
    pub fn delete_qualification_type(&self, name: &str) {
        let mut st = self.shared.lock();
        let ids: Vec<String> = st
            .qual_types
            .iter()
            .filter(|t| t.owned && t.name == name)
            .map(|t| t.id.clone())
            .collect();
        st.qual_types.retain(|t| !ids.contains(&t.id));
        st.quals.retain(|(type_id, _), _| !ids.contains(type_id));
    }

    /// How many notification e-mails MTurk would have sent `worker_id` about
    /// `qualification_type_id`: one per applied AssociateQualificationWithWorker with
    /// SendNotification true (MTurk's default when it is omitted).
    pub fn notifications(&self, worker_id: &str, qualification_type_id: &str) -> u64 {
        self.shared
            .lock()
            .notifications
            .get(&(worker_id.to_owned(), qualification_type_id.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Every (worker, qualification type) that got a notification, with its count.
    pub fn notification_counts(&self) -> BTreeMap<(String, String), u64> {
        self.shared.lock().notifications.clone()
    }

    pub fn blocked(&self, worker_id: &str) -> bool {
        self.shared.lock().blocks.contains_key(worker_id)
    }

    pub fn block_reason(&self, worker_id: &str) -> Option<String> {
        self.shared.lock().blocks.get(worker_id).cloned()
    }
}
