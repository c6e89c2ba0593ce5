//! `payout doctor`: checks, one by one, everything a batch needs before it can pay — the
//! credentials and where they come from, the sandbox (and production) reachable and linked, the
//! clock, the journal — each ✓ or ✗ with the step that fixes it. Reads only: it never pays,
//! never records a batch, never changes a file.

mod prolific;

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::args::{PaceArgs, TargetArgs, parse_endpoint};
use super::{Ctx, Outcome};
use crate::batch::mturk::{Place, Session, credentials_failure, fix_for};
use crate::error::{Exit, Failure, FailureKind};
use crate::journal::Journal;
use crate::output::{Printer, count, plural};
use crate::platform::aws_files::display_path;
use crate::platform::{
    Balance, CredentialSource, CredentialsUsed, PlatformSetupError, ServerClock, Systemic,
    find_credentials,
};
use crate::target::{Endpoint, Target};

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  payout doctor                  credentials, the sandbox, the clock and the journal\n  payout doctor --production     production too (reads its balance; pays nothing)\n  payout doctor --json | jq '.checks[] | select(.status == \"fail\")'\n\nTesting: --endpoint-url URL --testing-endpoint sends the checks to a stand-in such as\n`payout emulator` (with --production, the production check too, unless\n--production-endpoint-url URL gives it its own)."
)]
pub struct DoctorArgs {
    /// Check production too: reachable, linked, and its balance (read-only).
    #[arg(long)]
    production: bool,
    /// Send the checks to this endpoint instead of MTurk's (also PAYOUT_ENDPOINT_URL); needs
    /// --testing-endpoint.
    #[arg(long, value_name = "URL", value_parser = parse_endpoint)]
    endpoint_url: Option<Endpoint>,
    /// Send the production check to this endpoint (testing; needs --testing-endpoint).
    #[arg(long, value_name = "URL", value_parser = parse_endpoint, hide = true)]
    production_endpoint_url: Option<Endpoint>,
    /// Confirms that --endpoint-url is a test stand-in, not MTurk.
    #[arg(long)]
    testing_endpoint: bool,
    /// AWS profile from ~/.aws/credentials, used instead of any other credentials.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
    /// The journal (SQLite) to check.
    #[arg(long, env = "PAYOUT_JOURNAL", value_name = "PATH")]
    journal: Option<PathBuf>,
    /// Check Prolific instead of MTurk: the token (and where it is from), that it works, the
    /// workspace, its balance (read-only), and the journal.
    #[arg(long, conflicts_with_all = ["production", "production_endpoint_url", "profile"])]
    prolific: bool,
    /// With --prolific: the workspace to check (needed when the token can use several).
    #[arg(long, value_name = "ID", requires = "prolific")]
    workspace: Option<String>,
    /// Write the checks as one JSON object to stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Not checked, because an earlier check failed or it was not asked for.
    Skip,
}

/// One finding: what was checked, what was found, and (for a failure) the step that fixes it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: Option<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix,
        }
    }

    fn skip(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Skip,
            detail: detail.into(),
            fix: None,
        }
    }

    fn text(&self) -> String {
        let mark = match self.status {
            Status::Pass => "✓",
            Status::Fail => "✗",
            Status::Skip => "–",
        };
        let mut t = format!("{mark} {:<14} {}", self.name, self.detail);
        if let Some(fix) = &self.fix {
            for (i, line) in fix.lines().enumerate() {
                let lead = if i == 0 { "fix: " } else { "     " };
                t.push_str(&format!("\n  {:<14} {lead}{line}", ""));
            }
        }
        t
    }
}

/// How long the read-only calls of `doctor` and `balance` may take: shorter than a run's, since
/// nothing waits on them.
pub(super) fn check_pace() -> PaceArgs {
    PaceArgs {
        concurrency: 1,
        rate: None,
        max_rate: crate::pace::DEFAULT_MAX,
        max_attempts: 3,
        backoff_ms: 250,
        call_timeout_ms: 10_000,
        connect_timeout_ms: 5_000,
        yes: false,
        json: false,
    }
}

/// The sandbox's balance, always (mturk-api.md).
const SANDBOX_BALANCE: crate::money::Cents = crate::money::Cents(1_000_000);

/// AWS refuses signatures made more than this far from its clock.
const SIGNATURE_WINDOW_SECS: i64 = 15 * 60;
/// Some AWS services allow only 5 minutes; past this the clock is worth fixing anyway.
const CLOCK_WARN_SECS: i64 = 5 * 60;

/// One environment's account check: the check, the server's clock if it answered, and which
/// target it was.
struct AccountCheck {
    check: Check,
    clock: Option<ServerClock>,
    target: Target,
}

impl DoctorArgs {
    fn journal_path(&self) -> PathBuf {
        self.journal
            .clone()
            .unwrap_or_else(super::default_journal_path)
    }

    fn target_args(&self, target: Target) -> TargetArgs {
        let endpoint = match target {
            Target::Production => self
                .production_endpoint_url
                .clone()
                .or_else(|| self.endpoint_url.clone()),
            _ => self.endpoint_url.clone(),
        };
        TargetArgs {
            sandbox: target == Target::Sandbox,
            production: target == Target::Production,
            emulator: false,
            endpoint_url: endpoint,
            testing_endpoint: self.testing_endpoint,
            profile: self.profile.clone(),
        }
    }
}

pub async fn doctor(args: DoctorArgs, ctx: &Ctx) -> Outcome {
    if args.prolific {
        return prolific::doctor_prolific(&args, ctx).await;
    }
    // Endpoint overrides are checked before anything else, as for a run.
    let places = [Target::Sandbox, Target::Production]
        .into_iter()
        .filter(|t| *t == Target::Sandbox || args.production)
        .map(|t| Ok((t, Place::for_new(&args.target_args(t).choice())?)))
        .collect::<Result<Vec<_>, Failure>>()?;
    let mut checks = Vec::new();

    // Credentials: found, and from where. Temporary ones are refused before any call.
    let source = CredentialSource::Standard {
        profile: args.profile.clone(),
    };
    let found = find_credentials(&source).await.map(|(_, used)| used);
    checks.push(match &found {
        Ok(used) => Check::pass("credentials", used.to_string()),
        Err(e) => {
            let f = credentials_failure(e);
            Check::fail("credentials", f.message, f.fix)
        }
    });
    checks.push(long_term_check(&found));
    checks.push(region_check());
    let usable = matches!(&found, Ok(u) if !u.temporary);

    let quiet = Printer {
        quiet: true,
        ..ctx.printer
    };
    let mut accounts = Vec::new();
    for (target, place) in &places {
        let name = account_check_name(*target);
        if !usable {
            accounts.push(AccountCheck {
                check: Check::skip(
                    name,
                    "not checked: no usable credentials (nothing was sent)",
                ),
                clock: None,
                target: *target,
            });
            continue;
        }
        ctx.printer
            .say(format!("Checking {}…", place.banner(&ctx.printer)));
        accounts.push(account_check(place, &args.target_args(*target), &quiet).await);
    }
    if !args.production {
        accounts.push(AccountCheck {
            check: Check::skip(
                "production",
                "not checked (add --production to check it; read-only)",
            ),
            clock: None,
            target: Target::Production,
        });
    }
    let clock = clock_check(&accounts);
    if clock.status == Status::Fail {
        // A refusal for the clock is the clock's to fix: say so once.
        for a in &mut accounts {
            if a.check.fix.as_deref() == Some(fix_for(Systemic::ClockSkew, a.target).as_str()) {
                a.check.fix = Some("Fix the clock first (see the clock check).".into());
            }
        }
    }
    checks.extend(accounts.into_iter().map(|a| a.check));
    checks.push(clock);
    checks.extend(journal_checks(&args.journal_path()));
    conclude(&checks, ctx, "payout doctor")
}

/// Prints the checks, adds them to `--json`, and fails (naming the failed ones) if any did;
/// `again` is the command to run after fixing them.
fn conclude(checks: &[Check], ctx: &Ctx, again: &str) -> Outcome {
    for c in checks {
        ctx.printer.warn(c.text());
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.name)
        .collect();
    ctx.put("checks", checks);
    ctx.put("passed", failed.is_empty());
    if failed.is_empty() {
        ctx.printer.warn("All checks passed.");
        return Ok(Exit::Ok);
    }
    Err(Failure::new(
        FailureKind::ChecksFailed,
        format!(
            "{} of {} failed: {}",
            plural(failed.len() as u64, "check"),
            checks.len(),
            failed.join(", ")
        ),
    )
    .with_fix(format!(
        "Each ✗ above says what fixes it; then run `{again}` again."
    )))
}

fn account_check_name(target: Target) -> &'static str {
    match target {
        Target::Production => "production",
        _ => "sandbox",
    }
}

fn long_term_check(found: &Result<CredentialsUsed, PlatformSetupError>) -> Check {
    const NAME: &str = "long-term key";
    match found {
        Ok(used) if used.temporary => {
            let e = PlatformSetupError::TemporaryCredentials(used.source.clone());
            Check::fail(
                NAME,
                "a session token comes with these credentials: MTurk does not accept IAM role, temporary or federated credentials (nothing was sent)",
                credentials_failure(&e).fix,
            )
        }
        Ok(_) => Check::pass(NAME, "no session token (MTurk needs an IAM user's own key)"),
        Err(_) => Check::skip(NAME, "no credentials to look at"),
    }
}

/// MTurk exists only in us-east-1, and payout always signs for it; a region set for other AWS
/// work is ignored, and the check says so.
fn region_check() -> Check {
    let set: Vec<String> = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .filter_map(|v| {
            std::env::var(v)
                .ok()
                .filter(|r| !r.is_empty() && r != "us-east-1")
                .map(|r| format!("{v}={r}"))
        })
        .collect();
    let mut detail = "us-east-1, MTurk's only region (payout always uses it)".to_owned();
    if !set.is_empty() {
        detail.push_str(&format!("; {} is ignored", set.join(" and ")));
    }
    Check::pass("region", detail)
}

async fn account_check(place: &Place, args: &TargetArgs, printer: &Printer) -> AccountCheck {
    let name = account_check_name(place.target);
    let pace = check_pace();
    let connect = args.connect(&pace);
    let session = match Session::connect(place, &connect).await {
        Ok(s) => s,
        Err(f) => {
            return AccountCheck {
                check: Check::fail(name, f.message, f.fix),
                clock: None,
                target: place.target,
            };
        }
    };
    let result = session.check_account(place, &connect, printer).await;
    let clock = session.platform.server_clock();
    let check = match result {
        Ok(b) => Check::pass(name, balance_detail(place, &session.url, &b)),
        Err(f) => Check::fail(name, f.message, f.fix),
    };
    AccountCheck {
        check,
        clock,
        target: place.target,
    }
}

fn balance_detail(place: &Place, url: &str, b: &Balance) -> String {
    let mut text = format!(
        "{url} answers; the account is linked; balance {}",
        b.available
    );
    if let Some(hold) = b.on_hold.filter(|h| h.0 > 0) {
        text.push_str(&format!(" ({hold} on hold)"));
    }
    match place.target {
        Target::Sandbox if b.available != SANDBOX_BALANCE => text.push_str(&format!(
            " — the sandbox always answers {SANDBOX_BALANCE}; is this endpoint the sandbox?"
        )),
        Target::Production if b.available.0 == 0 => text.push_str(
            " — add funds at https://requester.mturk.com/prepayments/new before paying bonuses",
        ),
        _ => {}
    }
    text
}

/// `1 h 2 min`, `14 min`, `3 s`: whole minutes past one, since `Date` has whole seconds and
/// the answer took some time to come.
fn duration_text(secs: i64) -> String {
    let s = secs.unsigned_abs();
    if s < 60 {
        return format!("{s} s");
    }
    let minutes = (s + 30) / 60;
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// Compares the server's clock (the `Date` of its answer, kept as the answer arrived) with this
/// computer's. The AWS SDK also reads that header and corrects its own signing clock after a
/// refusal, but payout stops at its first refused call, so the clock itself must be right.
fn clock_check(accounts: &[AccountCheck]) -> Check {
    const NAME: &str = "clock";
    let Some((target, clock)) = accounts.iter().find_map(|a| a.clock.map(|c| (a.target, c))) else {
        return Check::skip(NAME, "not checked: no answer from MTurk to compare with");
    };
    let ahead = clock.ahead_secs();
    let whose = format!("{}'s", account_check_name(target));
    let how = "(its answer's Date header against this computer's clock)";
    let off = if ahead.abs() <= 2 {
        return Check::pass(NAME, format!("in step with the {whose} clock {how}"));
    } else if ahead > 0 {
        format!("{} behind the {whose}", duration_text(ahead))
    } else {
        format!("{} ahead of the {whose}", duration_text(ahead))
    };
    if ahead.abs() > SIGNATURE_WINDOW_SECS {
        Check::fail(
            NAME,
            format!(
                "this computer's clock is {off} {how}; AWS refuses signatures more than 15 minutes off"
            ),
            Some(fix_for(Systemic::ClockSkew, target)),
        )
    } else if ahead.abs() > CLOCK_WARN_SECS {
        Check::pass(
            NAME,
            format!(
                "this computer's clock is {off} {how}: inside AWS's 15 minutes, but worth setting automatically (NTP)"
            ),
        )
    } else {
        Check::pass(NAME, format!("this computer's clock is {off} {how}"))
    }
}

/// The journal file (where, private?) and its health (opens, schema, integrity, open batches).
fn journal_checks(path: &Path) -> Vec<Check> {
    use std::os::unix::fs::PermissionsExt;
    let shown = display_path(path);
    if !path.exists() {
        return vec![Check::pass(
            "journal",
            format!("{shown}: none yet (the first run creates it, readable only by you)"),
        )];
    }
    let mut files = vec![path.to_owned()];
    files.extend(
        crate::journal::companion_paths(path)
            .into_iter()
            .filter(|p| p.exists()),
    );
    let open: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let mode = std::fs::metadata(f).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then(|| format!("{} ({mode:o})", display_path(f)))
        })
        .collect();
    let file = if open.is_empty() {
        Check::pass("journal", format!("{shown}: readable only by you (0600)"))
    } else {
        Check::fail(
            "journal",
            format!(
                "{shown}: others may read it ({}); it holds worker IDs, amounts and reasons",
                open.join(", ")
            ),
            Some(format!(
                "chmod 600 '{}'* (payout also makes it private on its next run)",
                path.display()
            )),
        )
    };
    vec![file, journal_health(path)]
}

fn journal_health(path: &Path) -> Check {
    const NAME: &str = "journal health";
    let mut journal = match Journal::open_read_only(path) {
        Ok(j) => j,
        Err(e) => {
            let f = Failure::from(e);
            return Check::fail(NAME, f.message, f.fix);
        }
    };
    let (version, integrity) = match journal.health() {
        Ok(found) => found,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("failed to read the journal: {}", crate::error::chain(&e)),
                Some(damaged_fix(path)),
            );
        }
    };
    if integrity != ["ok"] {
        let first: Vec<&str> = integrity.iter().take(3).map(String::as_str).collect();
        return Check::fail(
            NAME,
            format!(
                "schema {version}; PRAGMA quick_check found {}: {}",
                plural(integrity.len() as u64, "problem"),
                first.join("; ")
            ),
            Some(damaged_fix(path)),
        );
    }
    let mut open = Vec::new();
    for target in [Target::Sandbox, Target::Production, Target::Emulator] {
        match journal.open_batches_on_target(target) {
            Ok(batches) => open.extend(
                batches
                    .into_iter()
                    .map(|b| format!("{} ({})", b.name, target.as_str())),
            ),
            Err(e) => {
                let f = Failure::from(e);
                return Check::fail(NAME, f.message, f.fix.or(Some(damaged_fix(path))));
            }
        }
    }
    let batches = if open.is_empty() {
        "no unfinished batch".to_owned()
    } else {
        format!(
            "{} unfinished: {} (`payout resume NAME` continues one, `payout cancel NAME` closes it)",
            count(open.len() as u64, ("batch", "batches")),
            open.join(", ")
        )
    };
    // Reading an older journal upgraded it (see `Journal::open_read_only`): said here.
    let upgraded: String = journal
        .take_warnings()
        .into_iter()
        .filter(|w| w.contains("upgraded"))
        .map(|w| format!(" ({w})"))
        .collect();
    Check::pass(
        NAME,
        format!("opens; schema {version}{upgraded}; quick_check ok; {batches}"),
    )
}

fn damaged_fix(path: &Path) -> String {
    format!(
        "Keep a copy of {} and its -wal file before anything else; then `sqlite3 {0} .recover` can save what is readable. Do not run a batch on it until it passes.",
        path.display()
    )
}
