//! `payout emulator`: the command-line face of the emulator (flags, environment credentials,
//! serving until Ctrl-C or SIGTERM).

use std::future::Future;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::config::{AccountMode, AfterApplyStatus, EmulatorConfig, FaultScope, load_known_csv};
use super::prolific::{CommonFlags, ProlificFlags};
use super::server::RunningEmulator;
use crate::money::Cents;

/// Environment variables that turn on signature checking (never secrets on the command line).
pub const ACCESS_KEY_ENV: &str = "PAYOUT_EMULATOR_ACCESS_KEY_ID";
pub const SECRET_KEY_ENV: &str = "PAYOUT_EMULATOR_SECRET_ACCESS_KEY";

fn parse_cents(text: &str) -> Result<Cents, String> {
    Cents::parse_amount(text).map_err(|e| format!("{text:?} {e}"))
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "{text:?} is not a fraction between 0 and 1 (such as 0.05)"
        )),
    }
}

/// Run a local MTurk Requester API emulator (for tests and dry runs; never real money).
///
/// Signatures are verified when PAYOUT_EMULATOR_ACCESS_KEY_ID and
/// PAYOUT_EMULATOR_SECRET_ACCESS_KEY are both set.
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Examples:\n  payout emulator --port 8080                       then: payout run bonuses.csv --emulator --endpoint-url http://127.0.0.1:8080\n  payout emulator --account not-linked-sandbox      rehearse the 'account not linked' answer (payout doctor shows its fix)\n  payout emulator --throttle-rps 3 --fault-rate 0.05   a slow, flaky MTurk"
)]
pub struct EmulatorArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Address to listen on. Anything but a loopback address needs --allow-remote.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Allow --host to be an address other machines can reach. The emulator pays anything to
    /// anyone who can connect and, unless credentials are set, checks no signature.
    #[arg(long)]
    pub allow_remote: bool,
    /// Starting account balance in dollars (Prolific: the workspace's, in its currency).
    #[arg(long, default_value = "10000.00", value_parser = parse_cents)]
    pub balance: Cents,
    /// Seed for latency jitter and fault picks (same seed, same picks).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Latency added to every API answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Plus a uniform random 0..N milliseconds.
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Answer ThrottlingException beyond this many API requests per second.
    #[arg(long)]
    pub throttle_rps: Option<u32>,
    /// Fraction of API requests answered 500 ServiceFault (not applied).
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub fault_rate: f64,
    /// Fraction of API requests applied, then left with no response at all.
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub lost_rate: f64,
    /// Fraction of API requests applied, then answered with a 5xx (see --fault-after-status).
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub fault_after_rate: f64,
    /// The 5xx of --fault-after-rate: 500 ServiceFault, 503, a load balancer's 504 page, or a
    /// seeded pick among the three.
    #[arg(long, value_enum, default_value_t = AfterApplyStatus::Mixed)]
    pub fault_after_status: AfterApplyStatus,
    /// Fraction of API requests read, then dropped with no response and NOT applied (the
    /// client cannot tell this from --lost-rate).
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub drop_before_rate: f64,
    /// Which requests the fault rates apply to: all, or only those that change something
    /// (so lookups such as ListBonusPayments stay clean).
    #[arg(long, value_enum, default_value_t = FaultScope::All)]
    pub fault_scope: FaultScope,
    /// What the account may do: ready; not-linked (to a requester account; the sandbox's
    /// wording with not-linked-sandbox); access-denied (an IAM user without an MTurk policy).
    #[arg(long, value_enum, default_value_t = AccountMode::Ready)]
    pub account: AccountMode,
    /// Make the server's clock read real time plus this many seconds (may be negative), and
    /// refuse requests signed more than 15 minutes away from it even when signatures are not
    /// checked (when they are, the 15 minutes always apply). Off unless given.
    #[arg(long, allow_negative_numbers = true, value_name = "SECONDS")]
    pub clock_skew_secs: Option<i64>,
    /// Refuse bonuses (insufficient funds) once bonus + fee spent would pass this many dollars.
    #[arg(long, value_parser = parse_cents)]
    pub spend_limit: Option<Cents>,
    /// CSV with WorkerId,AssignmentId,HITId: only these assignments and workers exist.
    #[arg(long, value_name = "FILE.csv")]
    pub known: Option<PathBuf>,
    /// Which API to emulate: MTurk's, or Prolific's (a seeded demo study; prints its URL,
    /// token and ids). --balance, --seed, --latency-ms, --jitter-ms, --lost-rate,
    /// --fault-after-rate, --drop-before-rate and --fault-scope apply to both.
    #[arg(long, value_enum, default_value_t = EmulatorPlatform::Mturk)]
    pub platform: EmulatorPlatform,
    #[command(flatten)]
    pub prolific: ProlificFlags,
}

/// The platform `payout emulator` plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EmulatorPlatform {
    #[default]
    Mturk,
    Prolific,
}

impl EmulatorArgs {
    /// The configuration and address these flags describe; `env` looks up the two credential
    /// variables (a parameter so tests need not touch the process environment).
    pub fn config(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> io::Result<(EmulatorConfig, SocketAddr)> {
        if !self.host.is_loopback() && !self.allow_remote {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "refusing to listen on {}: other machines could reach the emulator; use a loopback address such as 127.0.0.1, or pass --allow-remote",
                    self.host
                ),
            ));
        }
        let credentials = match (env(ACCESS_KEY_ENV), env(SECRET_KEY_ENV)) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Some((id, secret)),
            (None, None) => None,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("set both {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}, or neither"),
                ));
            }
        };
        let known = match &self.known {
            Some(path) => Some(load_known_csv(path)?),
            None => None,
        };
        let config = EmulatorConfig {
            balance: self.balance,
            seed: self.seed,
            latency: Duration::from_millis(self.latency_ms),
            latency_jitter: Duration::from_millis(self.jitter_ms),
            throttle_rps: self.throttle_rps,
            fault_rate: self.fault_rate,
            lost_rate: self.lost_rate,
            fault_after_rate: self.fault_after_rate,
            fault_after_status: self.fault_after_status,
            drop_before_rate: self.drop_before_rate,
            fault_scope: self.fault_scope,
            account: self.account,
            clock_skew_secs: self.clock_skew_secs,
            spend_limit: self.spend_limit,
            credentials,
            known,
        };
        Ok((config, SocketAddr::new(self.host, self.port)))
    }
}

/// Serves until `shutdown` completes; `announce` gets the URL once the port is bound.
pub async fn serve_until(
    config: EmulatorConfig,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()>,
    announce: impl FnOnce(&str),
) -> io::Result<()> {
    let emulator = RunningEmulator::start(config, addr).await?;
    announce(&emulator.url());
    shutdown.await;
    emulator.shutdown().await;
    Ok(())
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: a signal sent as soon as the URL is announced is caught,
/// not left to the default action (which killed the process).
fn ctrl_c_or_sigterm() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt()).ok();
        let term = signal(SignalKind::terminate()).ok();
        async move {
            match (int, term) {
                (Some(mut int), Some(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                (Some(mut one), None) | (None, Some(mut one)) => {
                    one.recv().await;
                }
                (None, None) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `payout emulator`: prints `payout emulator listening on URL` (the address really bound) and
/// serves until Ctrl-C or SIGTERM.
pub async fn serve_cli(args: EmulatorArgs) -> io::Result<()> {
    if args.platform == EmulatorPlatform::Prolific {
        return serve_prolific(args).await;
    }
    let given = args.prolific.given();
    if !given.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} only apply with --platform prolific", given.join(", ")),
        ));
    }
    let (config, addr) = args.config(|name| std::env::var(name).ok())?;
    if !addr.ip().is_loopback() {
        eprintln!(
            "warning: the emulator listens on {}: anyone who can reach it can use it",
            addr.ip()
        );
    }
    let mut printed = Ok(());
    serve_until(config, addr, ctrl_c_or_sigterm(), |url| {
        let mut out = io::stdout().lock();
        // Scripts wait for this line, so it must not sit in a buffer.
        printed = writeln!(out, "payout emulator listening on {url}").and_then(|_| out.flush());
    })
    .await?;
    printed
}

/// `payout emulator --platform prolific`: refuses the MTurk-only flags, binds loopback unless
/// --allow-remote, prints URL, token and demo ids, serves until Ctrl-C or SIGTERM.
async fn serve_prolific(args: EmulatorArgs) -> io::Result<()> {
    let mut mturk_only = Vec::new();
    if args.throttle_rps.is_some() {
        mturk_only.push("--throttle-rps");
    }
    if args.fault_rate != 0.0 {
        mturk_only.push("--fault-rate");
    }
    if args.account != AccountMode::Ready {
        mturk_only.push("--account");
    }
    if args.clock_skew_secs.is_some() {
        mturk_only.push("--clock-skew-secs");
    }
    if args.spend_limit.is_some() {
        mturk_only.push("--spend-limit");
    }
    if args.known.is_some() {
        mturk_only.push("--known");
    }
    if !mturk_only.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} only apply to the MTurk emulator", mturk_only.join(", ")),
        ));
    }
    if !args.host.is_loopback() && !args.allow_remote {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "refusing to listen on {}: other machines could reach the emulator; use a loopback address such as 127.0.0.1, or pass --allow-remote",
                args.host
            ),
        ));
    }
    if !args.host.is_loopback() {
        eprintln!(
            "warning: the emulator listens on {}: anyone who can reach it can use it",
            args.host
        );
    }
    let common = CommonFlags {
        balance_minor: args.balance.0 as i64,
        seed: args.seed,
        latency_ms: args.latency_ms,
        jitter_ms: args.jitter_ms,
        lost_rate: args.lost_rate,
        fault_after_rate: args.fault_after_rate,
        drop_before_rate: args.drop_before_rate,
        faults_on_reads: args.fault_scope == FaultScope::All,
    };
    let addr = SocketAddr::new(args.host, args.port);
    super::prolific::serve(common, args.prolific, addr, ctrl_c_or_sigterm()).await
}
