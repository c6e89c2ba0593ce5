//! Where an MTurk batch works and how it gets there: the target and endpoint (and the rules
//! that keep a batch on its ledger), credentials, the client, and the account check that comes
//! before anything is recorded — bounded in time, with the step that fixes each failure. Driven
//! by resolved settings ([`PlaceChoice`], [`Connect`]); the CLI resolves its flags into them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::Say;
use crate::emulator::{EmulatorConfig, RunningEmulator};
use crate::engine::EngineConfig;
use crate::error::{Failure, FailureKind};
use crate::journal::BatchInfo;
use crate::output::Printer;
use crate::platform::{
    Balance, CredentialSource, ErrorClass, MturkPlatform, PRODUCTION_ENDPOINT, Platform,
    PlatformError, PlatformSetupError, SANDBOX_ENDPOINT, Systemic, Timeouts,
};
use crate::target::{Endpoint, Target, ledger};

/// How long the account check may take in all before payout gives up on the endpoint: two
/// calls' worth (30 s with the default call timeout), at least 5 s.
fn check_budget(c: &Connect) -> Duration {
    (c.timeouts.call * 2).clamp(Duration::from_secs(5), Duration::from_secs(60))
}

/// The target and endpoint a command works on.
#[derive(Debug, Clone)]
pub struct Place {
    pub target: Target,
    /// A testing endpoint replacing the target's own.
    pub endpoint: Option<Endpoint>,
}

/// Environment variable that names an endpoint override.
pub const ENDPOINT_ENV: &str = "PAYOUT_ENDPOINT_URL";

/// Where the user asked to work: a target if one was named, an endpoint override from
/// `--endpoint-url` or the text of `PAYOUT_ENDPOINT_URL` (checked when the place is decided),
/// and whether it was confirmed as a test stand-in.
#[derive(Debug, Clone, Default)]
pub struct PlaceChoice {
    pub target: Option<Target>,
    pub endpoint_flag: Option<Endpoint>,
    pub endpoint_env: Option<String>,
    pub testing_endpoint: bool,
}

impl PlaceChoice {
    /// The endpoint the user gave, and where they gave it.
    fn endpoint(&self) -> Result<Option<(Endpoint, &'static str)>, Failure> {
        if let Some(e) = &self.endpoint_flag {
            return Ok(Some((e.clone(), "--endpoint-url")));
        }
        match &self.endpoint_env {
            Some(text) if !text.trim().is_empty() => match Endpoint::parse(text) {
                Ok(e) => Ok(Some((e, ENDPOINT_ENV))),
                Err(err) => Err(Failure::new(
                    FailureKind::Usage,
                    format!("{ENDPOINT_ENV}={text:?} is not an endpoint URL: it {err}"),
                )
                .with_fix(format!(
                    "Unset {ENDPOINT_ENV} or give a URL such as http://127.0.0.1:8080."
                ))),
            },
            _ => Ok(None),
        }
    }
}

/// How to reach the platform: the AWS profile, the calls' timeouts, and the retries of the
/// account check.
#[derive(Debug, Clone)]
pub struct Connect {
    pub profile: Option<String>,
    pub timeouts: Timeouts,
    pub engine: EngineConfig,
}

impl Place {
    /// For a new batch: the target chosen (sandbox by default) and any endpoint override. An
    /// override of the sandbox or production needs `--testing-endpoint`: an endpoint left set
    /// from testing must never quietly replace MTurk.
    pub fn for_new(args: &PlaceChoice) -> Result<Place, Failure> {
        let target = args.target.unwrap_or(Target::Sandbox);
        let endpoint = args.endpoint()?;
        if let Some((e, from)) = &endpoint
            && target != Target::Emulator
            && !args.testing_endpoint
        {
            return Err(Failure::new(
                FailureKind::TargetMismatch,
                format!(
                    "{from} sends {} calls to {e} instead of MTurk",
                    target.banner()
                ),
            )
            .with_fix(format!(
                "If that endpoint is a test stand-in, add --testing-endpoint; if not, remove {from}."
            )));
        }
        Ok(Place {
            target,
            endpoint: endpoint.map(|(e, _)| e),
        })
    }

    /// For a recorded batch: its own target and endpoint. Flags or the environment may repeat
    /// them but never change them.
    pub fn for_batch(batch: &BatchInfo, args: &PlaceChoice) -> Result<Place, Failure> {
        if let Some(t) = args.target.filter(|t| *t != batch.target) {
            return Err(Failure::new(
                FailureKind::TargetMismatch,
                format!(
                    "batch {} works on {}, not {}; resuming it elsewhere is refused",
                    batch.name,
                    batch.target.banner(),
                    t.banner()
                ),
            ));
        }
        if let Some((e, from)) = args.endpoint()?
            && batch.endpoint.as_ref() != Some(&e)
        {
            let recorded = match &batch.endpoint {
                Some(b) => format!("through {b}"),
                None => format!("through {}'s own endpoint", batch.target.banner()),
            };
            return Err(Failure::new(
                FailureKind::TargetMismatch,
                format!(
                    "batch {} works {recorded}; {from} would send it to {e}",
                    batch.name
                ),
            )
            .with_fix(format!(
                "A batch always works where it was recorded. Remove {from} to resume it there."
            )));
        }
        Ok(Place {
            target: batch.target,
            endpoint: batch.endpoint.clone(),
        })
    }

    pub fn ledger(&self) -> String {
        ledger(self.target, self.endpoint.as_ref())
    }

    /// `SANDBOX`, or `SANDBOX via http://… (testing endpoint)`, for banners.
    pub fn banner(&self, printer: &Printer) -> String {
        let t = printer.target(self.target);
        match &self.endpoint {
            Some(e) if self.target == Target::Emulator => format!("{t} at {e}"),
            Some(e) => format!("{t} via {e} (testing endpoint, not MTurk)"),
            None => t,
        }
    }
}

/// A connected platform, and the emulator behind it when the target is the built-in one.
pub struct Session {
    pub platform: Arc<MturkPlatform>,
    pub url: String,
    _emulator: Option<RunningEmulator>,
}

impl Session {
    pub async fn connect(place: &Place, c: &Connect) -> Result<Session, Failure> {
        let mut emulator = None;
        let (url, creds) = match (place.target, &place.endpoint) {
            (Target::Emulator, None) => {
                let emu =
                    RunningEmulator::start(EmulatorConfig::default(), ([127, 0, 0, 1], 0).into())
                        .await
                        .map_err(|e| {
                            Failure::new(
                                FailureKind::Unreachable,
                                format!("failed to start the built-in emulator: {e}"),
                            )
                        })?;
                let url = emu.url();
                emulator = Some(emu);
                (url, emulator_credentials())
            }
            (Target::Emulator, Some(e)) => (e.to_string(), emulator_credentials()),
            (t, e) => (
                e.as_ref().map_or_else(
                    || {
                        if t == Target::Production {
                            PRODUCTION_ENDPOINT.to_owned()
                        } else {
                            SANDBOX_ENDPOINT.to_owned()
                        }
                    },
                    ToString::to_string,
                ),
                CredentialSource::Standard {
                    profile: c.profile.clone(),
                },
            ),
        };
        let platform = MturkPlatform::connect(&url, creds, c.timeouts)
            .await
            .map_err(|e| credentials_failure(&e))?;
        Ok(Session {
            platform: Arc::new(platform),
            url,
            _emulator: emulator,
        })
    }

    /// Connects and checks the account: what every command that works on MTurk does first.
    pub async fn start(
        place: &Place,
        c: &Connect,
        ui: &dyn Say,
    ) -> Result<(Session, Balance), Failure> {
        let session = Session::connect(place, c).await?;
        let balance = session.check_account(place, c, ui).await?;
        Ok((session, balance))
    }

    /// Reads the balance: proves the endpoint answers and the credentials and account work.
    /// Retries what may pass, says so while it waits, and gives up after about 30 seconds.
    pub async fn check_account(
        &self,
        place: &Place,
        c: &Connect,
        ui: &dyn Say,
    ) -> Result<Balance, Failure> {
        if place.target != Target::Emulator {
            ui.say(&format!("Credentials: {}", self.platform.credentials()));
        }
        let started = Instant::now();
        let cfg = &c.engine;
        let mut rng = fastrand::Rng::with_seed(0);
        let mut tries = 0;
        loop {
            let err = match self.platform.balance().await {
                Ok(b) => return Ok(b),
                Err(e) => e,
            };
            tries += 1;
            let retryable = matches!(
                err.class,
                ErrorClass::Throttled | ErrorClass::NotSent | ErrorClass::Ambiguous
            );
            let delay = crate::engine::backoff(cfg, tries, &mut rng)
                .max(cfg.backoff_base.min(Duration::from_secs(1)));
            if !retryable || started.elapsed() + delay >= check_budget(c) {
                return Err(account_failure(&err, place, &self.url, started.elapsed()));
            }
            ui.say(&format!(
                "Checking the account at {}: {} — trying again in {:.1}s",
                self.url,
                crate::output::short(&err.message, 100),
                delay.as_secs_f64()
            ));
            tokio::time::sleep(delay).await;
        }
    }
}

/// What missing or temporary credentials mean, and what to do.
pub fn credentials_failure(e: &PlatformSetupError) -> Failure {
    let fix = match e {
        PlatformSetupError::NoCredentials(_) => {
            "Store the IAM user's access key with `payout setup --csv credentials.csv` (the file the IAM console gives), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --profile NAME. To try payout without an account, use --emulator."
        }
        PlatformSetupError::TemporaryCredentials(_) => {
            "MTurk does not accept IAM role, SSO, temporary or federated credentials (a session token). Unset AWS_SESSION_TOKEN and use the access key of an IAM user with AmazonMechanicalTurkFullAccess (`payout setup --csv credentials.csv` stores one)."
        }
    };
    Failure::new(FailureKind::Credentials, e.to_string()).with_fix(fix)
}

fn emulator_credentials() -> CredentialSource {
    CredentialSource::Fixed {
        access_key_id: "AKIDPAYOUTEMULATOR".into(),
        secret_access_key: "payout-emulator-secret".into(),
    }
}

/// The step that fixes a systemic error on `target`.
pub fn fix_for(s: Systemic, target: Target) -> String {
    match s {
        Systemic::InsufficientFunds => {
            "Add funds at https://requester.mturk.com/prepayments/new, then run the same command again.".into()
        }
        Systemic::Credentials => {
            "Check the access key and secret (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or --profile): they must be an IAM user's active access key. If the key was deleted, create a new one in the IAM console. Then run the same command again.".into()
        }
        Systemic::AccessDenied => {
            "Attach the AmazonMechanicalTurkFullAccess policy to the IAM user whose key payout uses (IAM console → Users → Permissions), then run the same command again.".into()
        }
        Systemic::AccountNotLinked => match target {
            Target::Production => "Link your AWS account to your requester account at https://requester.mturk.com/developer, then run the same command again.".into(),
            _ => "Link your AWS account to your sandbox requester account at https://requestersandbox.mturk.com/developer, then run the same command again.".into(),
        },
        Systemic::ClockSkew => {
            "Your computer's clock is off by more than 15 minutes, so AWS refuses the signatures: set the clock automatically (NTP), then run the same command again.".into()
        }
    }
}

/// What a failed account check means, and what to do.
fn account_failure(e: &PlatformError, place: &Place, url: &str, waited: Duration) -> Failure {
    let message = format!("failed to read the account balance at {url}: {e}");
    match e.class {
        ErrorClass::Systemic(s) => {
            let kind = if s == Systemic::Credentials {
                FailureKind::Credentials
            } else {
                FailureKind::Account
            };
            Failure::new(kind, message).with_fix(fix_for(s, place.target))
        }
        ErrorClass::NotSent | ErrorClass::Ambiguous | ErrorClass::Throttled => Failure::new(
            FailureKind::Unreachable,
            format!(
                "{url} could not be reached or did not answer ({} s of tries): {e}",
                waited.as_secs()
            ),
        )
        .with_fix(match &place.endpoint {
            Some(_) => "Check the endpoint URL (is the emulator or stand-in running there?) and try again. Nothing was recorded or sent.".to_owned(),
            None => "Check your network connection (and any proxy), then run the same command again. Nothing was recorded or sent.".to_owned(),
        }),
        _ => Failure::new(FailureKind::Account, message),
    }
}
