//! `payout doctor --prolific`: the token (found, from where, its file private), that Prolific
//! accepts it, the workspace, its balance, and the journal — each ✓ or ✗ with its fix. Reads
//! only: `GET users/me`, `workspaces` and the workspace's `balance`; nothing is set up or paid.

use std::time::Duration;

use super::{Check, DoctorArgs, conclude, journal_checks};
use crate::batch::prolific::{ProlificTarget, choose_workspace};
use crate::cli::prolific::{
    TokenSource, find_token_from, platform_for, prolific_target, token_path,
};
use crate::cli::{Ctx, Outcome};
use crate::error::{Failure, FailureKind};
use crate::ids::WorkspaceId;
use crate::platform::aws_files::display_path;
use crate::platform::prolific::{HttpTimeouts, PRODUCTION_HOST, ProlificPlatform, TOKEN_FIX};
use crate::platform::{ErrorClass, PlatformError, Systemic};

/// The doctor's calls wait less than a run's: nothing depends on them.
const TIMEOUTS: HttpTimeouts = HttpTimeouts {
    connect: Duration::from_secs(5),
    call: Duration::from_secs(10),
};

pub(super) async fn doctor_prolific(args: &DoctorArgs, ctx: &Ctx) -> Outcome {
    let endpoint = args.endpoint_url.as_ref().map(|e| e.as_str().to_owned());
    let target = prolific_target(endpoint.as_deref(), args.testing_endpoint, false)?;
    let host = match &target {
        ProlificTarget::Testing(url) => url.clone(),
        _ => PRODUCTION_HOST.to_owned(),
    };
    let workspace = match &args.workspace {
        None => None,
        Some(w) => Some(WorkspaceId::parse(w.trim()).map_err(|e| {
            Failure::new(FailureKind::Usage, format!("--workspace {w:?} {e}"))
                .with_fix("copy the workspace ID from Prolific")
        })?),
    };
    let mut checks = Vec::new();

    let found = find_token_from();
    checks.push(match &found {
        Ok((t, TokenSource::Env)) => {
            Check::pass("token", format!("{} from PROLIFIC_TOKEN", t.hint()))
        }
        Ok((t, TokenSource::File(p))) => {
            Check::pass("token", format!("{} from {}", t.hint(), display_path(p)))
        }
        Err(f) => Check::fail("token", f.message.clone(), f.fix.clone()),
    });
    checks.push(token_file_check(found.as_ref().ok().map(|(_, s)| s)));

    let platform = match found {
        Ok((token, _)) => Some(platform_for(&host, token, TIMEOUTS)?),
        Err(_) => None,
    };
    match &platform {
        None => {
            for name in ["prolific", "workspace", "balance"] {
                checks.push(Check::skip(
                    name,
                    "not checked: no token (nothing was sent)",
                ));
            }
        }
        Some(p) => {
            ctx.printer.say(format!("Checking Prolific at {host}…"));
            checks.extend(account_checks(p, &host, workspace.as_ref()).await);
        }
    }
    checks.extend(journal_checks(&args.journal_path()));
    conclude(&checks, ctx, "payout doctor --prolific")
}

/// The token file, when there is one: readable by its owner only (0600 or narrower).
fn token_file_check(source: Option<&TokenSource>) -> Check {
    use std::os::unix::fs::PermissionsExt;
    const NAME: &str = "token file";
    let path = token_path();
    let shown = display_path(&path);
    let Ok(meta) = std::fs::metadata(&path) else {
        return Check::skip(
            NAME,
            format!("{shown}: none (`payout setup --prolific` stores one)"),
        );
    };
    let mode = meta.permissions().mode() & 0o777;
    let used = if source == Some(&TokenSource::Env) {
        " (not used: PROLIFIC_TOKEN takes precedence)"
    } else {
        ""
    };
    if mode & 0o077 != 0 {
        Check::fail(
            NAME,
            format!(
                "{shown}: others may read it ({mode:o}); it holds the Prolific API token{used}"
            ),
            Some(format!("chmod 600 '{}'", path.display())),
        )
    } else {
        Check::pass(
            NAME,
            format!("{shown}: readable only by you ({mode:o}){used}"),
        )
    }
}

/// The step that fixes a failed call: the token's when Prolific refused it.
fn call_fix(e: &PlatformError) -> String {
    match e.class {
        ErrorClass::Systemic(Systemic::Credentials | Systemic::AccessDenied) => {
            TOKEN_FIX.to_owned()
        }
        ErrorClass::NotSent => {
            "check the network (and the URL given with --endpoint-url); nothing was sent".to_owned()
        }
        _ => "try again in a moment; if it persists, check Prolific's status page".to_owned(),
    }
}

/// The token works (`users/me`), the workspace, its balance.
async fn account_checks(
    p: &ProlificPlatform,
    host: &str,
    given: Option<&WorkspaceId>,
) -> Vec<Check> {
    let skip = |why: &str| {
        ["workspace", "balance"]
            .map(|n| Check::skip(n, format!("not checked: {why}")))
            .to_vec()
    };
    let mut checks = Vec::new();
    match p.me().await {
        Ok(me) => checks.push(Check::pass(
            "prolific",
            format!(
                "{host} answers; the token {} is accepted (user {})",
                p.token_hint(),
                me.id
            ),
        )),
        Err(e) => {
            checks.push(Check::fail(
                "prolific",
                format!("reading the token's user: {e}"),
                Some(call_fix(&e)),
            ));
            checks.extend(skip("Prolific did not answer users/me"));
            return checks;
        }
    }
    let workspaces = match p.workspaces().await {
        Ok(w) => w,
        Err(e) => {
            checks.push(Check::fail(
                "workspace",
                format!("listing the workspaces: {e}"),
                Some(call_fix(&e)),
            ));
            checks.push(Check::skip("balance", "not checked: no workspace"));
            return checks;
        }
    };
    let listed = || {
        workspaces
            .iter()
            .map(|w| format!("{} ({})", w.id, w.title.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let chosen = match given {
        Some(w) if !workspaces.iter().any(|x| x.id == w.as_str()) => Err(Failure::new(
            FailureKind::Usage,
            format!(
                "the token cannot use the workspace {w}; it can use: {}",
                listed()
            ),
        )
        .with_fix("pass one of those with --workspace ID")),
        _ => choose_workspace(given, &workspaces),
    };
    let workspace = match chosen {
        Ok(w) => w,
        Err(f) => {
            checks.push(Check::fail("workspace", f.message, f.fix));
            checks.push(Check::skip("balance", "not checked: no workspace chosen"));
            return checks;
        }
    };
    let title = workspaces
        .iter()
        .find(|w| w.id == workspace.as_str())
        .and_then(|w| w.title.clone())
        .map(|t| format!(" ({t})"))
        .unwrap_or_default();
    let how = if given.is_some() {
        "given with --workspace"
    } else {
        "the token's only workspace"
    };
    checks.push(Check::pass(
        "workspace",
        format!("{workspace}{title}, {how}"),
    ));
    checks.push(match p.balance(&workspace).await {
        Ok(b) => {
            let shown = |m: crate::money::ExactMinor| match b.currency {
                Some(c) => m.display(c),
                None => format!("{m} (minor units; currency not given)"),
            };
            let mut detail = format!("{} available (read-only)", shown(b.available));
            if b.available <= crate::money::ExactMinor::ZERO {
                detail.push_str(" — add funds to the workspace on Prolific before paying bonuses");
            }
            Check::pass("balance", detail)
        }
        Err(e) => Check::fail(
            "balance",
            format!("reading the workspace's balance: {e}"),
            Some(call_fix(&e)),
        ),
    });
    checks
}
