//! Argument groups shared by several subcommands: the journal, the target, the pace.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::batch::mturk::{Connect, ENDPOINT_ENV, PlaceChoice};
use crate::engine::EngineConfig;
use crate::target::{Endpoint, Target};

#[derive(Args, Debug, Clone)]
pub struct JournalArgs {
    /// The journal (SQLite) recording every batch and operation.
    #[arg(long, env = "PAYOUT_JOURNAL", value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Print only errors and the final summary.
    #[arg(long, short)]
    pub quiet: bool,
}

impl JournalArgs {
    pub fn path(&self) -> PathBuf {
        self.journal
            .clone()
            .unwrap_or_else(super::default_journal_path)
    }
}

pub(super) fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    Endpoint::parse(s).map_err(|e| format!("{s:?} is not an endpoint URL: it {e}"))
}

#[derive(Args, Debug, Clone)]
pub struct TargetArgs {
    /// Work in the MTurk sandbox (the default): no real money.
    #[arg(long, group = "target")]
    pub sandbox: bool,
    /// Work in production: real money, real workers.
    #[arg(long, group = "target")]
    pub production: bool,
    /// Work in a built-in emulator started for this run: no AWS account needed.
    #[arg(long, group = "target")]
    pub emulator: bool,
    /// Send the calls to this endpoint instead of the target's own (also PAYOUT_ENDPOINT_URL).
    /// With --sandbox or --production it needs --testing-endpoint.
    #[arg(long, value_name = "URL", value_parser = parse_endpoint)]
    pub endpoint_url: Option<Endpoint>,
    /// Confirms that --endpoint-url (or PAYOUT_ENDPOINT_URL) with --sandbox or --production is
    /// a test stand-in, not MTurk.
    #[arg(long)]
    pub testing_endpoint: bool,
    /// AWS profile from ~/.aws/credentials (or ~/.aws/config), used instead of any other
    /// credentials. Without it: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, then the profile
    /// AWS_PROFILE names (or `default`), then the `payout` profile `payout setup` writes.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

impl TargetArgs {
    /// The place asked for, as given: the target named, `--endpoint-url`, and the text of
    /// `PAYOUT_ENDPOINT_URL` (the library checks it when it decides the place).
    pub fn choice(&self) -> PlaceChoice {
        PlaceChoice {
            target: self.chosen(),
            endpoint_flag: self.endpoint_url.clone(),
            endpoint_env: std::env::var(ENDPOINT_ENV).ok(),
            testing_endpoint: self.testing_endpoint,
        }
    }

    /// How to reach MTurk with these flags and this pace.
    pub fn connect(&self, pace: &PaceArgs) -> Connect {
        Connect {
            profile: self.profile.clone(),
            timeouts: pace.timeouts(),
            engine: pace.engine(),
        }
    }

    pub fn chosen(&self) -> Option<Target> {
        if self.production {
            Some(Target::Production)
        } else if self.emulator {
            Some(Target::Emulator)
        } else if self.sandbox {
            Some(Target::Sandbox)
        } else {
            None
        }
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && (0.2..=100_000.0).contains(&r) => Ok(r),
        _ => Err("a number of requests per second from 0.2 to 100000, such as 3 or 0.5".into()),
    }
}

#[derive(Args, Debug, Clone)]
pub struct PaceArgs {
    /// Calls in flight at once (at least the pace × the platform's latency).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Requests per second, fixed. Without it payout finds the platform's limit by itself:
    /// it speeds up while the platform answers and settles just under the rate it accepts.
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// The most requests per second the adaptive pace may reach.
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate, default_value_t = crate::pace::DEFAULT_MAX)]
    pub max_rate: f64,
    /// Attempts per operation on faults and lost answers before leaving it for a later run.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// First retry delay in milliseconds (doubles on each retry, with jitter).
    #[arg(long, default_value_t = 250, hide = true)]
    pub backoff_ms: u64,
    /// How long one call may take before its answer is treated as lost, in milliseconds.
    #[arg(long, default_value_t = 15_000, hide = true)]
    pub call_timeout_ms: u64,
    /// How long connecting may take, in milliseconds.
    #[arg(long, default_value_t = 5_000, hide = true)]
    pub connect_timeout_ms: u64,
    /// Confirm a production run (required with --production).
    #[arg(long)]
    pub yes: bool,
    /// Write one JSON object to stdout at exit: exit_code, error, and the plan or summary.
    #[arg(long)]
    pub json: bool,
}

impl PaceArgs {
    pub fn engine(&self) -> EngineConfig {
        EngineConfig {
            concurrency: self.concurrency as usize,
            pace: match self.rate {
                Some(r) => crate::pace::PaceConfig::pinned(r),
                None => crate::pace::PaceConfig::adaptive(self.max_rate),
            },
            max_attempts: self.max_attempts,
            read_attempts: self.max_attempts * 2,
            backoff_base: Duration::from_millis(self.backoff_ms),
            backoff_cap: Duration::from_secs(20).max(Duration::from_millis(self.backoff_ms)),
            seed: 0,
        }
    }

    pub fn timeouts(&self) -> crate::platform::Timeouts {
        crate::platform::Timeouts {
            connect: Duration::from_millis(self.connect_timeout_ms),
            call: Duration::from_millis(self.call_timeout_ms),
        }
    }
}
