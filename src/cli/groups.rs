//! `payout run` of a participant-group file on Prolific (and `status`, `cancel`, `resume` of a
//! group batch): arguments resolved into [`GroupSettings`], the token found, the batch's life
//! handed to `batch::groups`, its end rendered and mapped to an exit status. No policy here.

use std::sync::Arc;

use super::prolific::{CliUi, ProlificRun, connect, drive, platform_of_batch, render_end};
use super::{Ctx, Outcome};
use crate::batch::groups::{GroupSettings, cancel, run};
use crate::batch::prolific::ProlificTarget;
use crate::engine::{EngineConfig, MemberConfig, MemberRunEnd, StopReason, StopSignal};
use crate::error::{Exit, Failure, FailureKind};
use crate::ids::WorkspaceId;
use crate::input::GroupOptions;
use crate::journal::Journal;
use crate::journal::members::GroupStatus;
use crate::signals::Signals;

fn member_config(r: &ProlificRun<'_>) -> MemberConfig {
    MemberConfig {
        engine: EngineConfig {
            backoff_base: r.backoff,
            ..EngineConfig::default()
        },
        ..MemberConfig::default()
    }
}

pub async fn run_groups(
    r: &ProlificRun<'_>,
    bytes: &[u8],
    target: ProlificTarget,
    workspace: Option<WorkspaceId>,
    ctx: &Ctx,
) -> Outcome {
    if r.group.is_some() && r.block_list.is_some() {
        return Err(Failure::new(
            FailureKind::Usage,
            "--group and --block-list both name the group of the file's rows",
        )
        .with_fix(
            "give one: --block-list NAME for a group used as a block list, --group NAME otherwise",
        ));
    }
    let source = r.file.display().to_string();
    let options = GroupOptions {
        group: r.group.clone().or_else(|| r.block_list.clone()),
        action: r.action,
    };
    let emulator = match target {
        ProlificTarget::Emulator => {
            Some(start_emulator_for(bytes, &source, &options, r.create_missing).await?)
        }
        _ => None,
    };
    let (platform, banner) = connect(&target, emulator.as_ref().map(|e| e.url()))?;
    ctx.printer.say(format!(
        "payout · {banner} · participant groups · {source} · token {}",
        platform.token_hint()
    ));
    let settings = GroupSettings {
        source,
        workspace,
        target,
        dry_run: r.dry_run,
        skip_rehearsal: r.skip_rehearsal,
        create_missing: r.create_missing,
        block_list: r.block_list.is_some(),
        options,
        members: member_config(r),
    };
    let mut journal = Journal::open(&r.journal.path())?;
    for w in journal.take_warnings() {
        ctx.printer.warn(format!("warning: {w}"));
    }
    let stop = Arc::new(StopSignal::default());
    let signals = Signals::install();
    let ui = CliUi::new(ctx, r.yes);
    let work = run(
        &settings,
        bytes,
        Arc::new(platform),
        &mut journal,
        &ui,
        stop.clone(),
    );
    let ended = drive(work, signals, &stop, ctx).await;
    if let Some(e) = emulator {
        e.shutdown().await;
    }
    render_end(ended?, ctx)
}

/// How a group batch's run or resume ended.
pub fn render_groups_end(end: &MemberRunEnd, ctx: &Ctx) -> Outcome {
    ctx.put(
        "summary",
        serde_json::json!({
            "done": end.done, "no_ops": end.no_ops, "pending": end.pending,
            "unverified": end.unverified, "failed": end.failed,
        }),
    );
    ctx.printer.say(format!(
        "{} done ({} of them already so: nothing sent), {} pending, {} sent but not yet seen in the member lists, {} failed.",
        end.done, end.no_ops, end.pending, end.unverified, end.failed
    ));
    if let Some(StopReason::Systemic(_, m) | StopReason::Journal(m)) = &end.stop {
        ctx.printer.warn(format!("Stopped: {m}"));
    }
    if end.pending + end.unverified > 0 {
        ctx.printer.warn(
            "Not every change is seen in its group's member list yet: run the same command again to go on (it reads the member lists first).",
        );
    }
    Ok(if end.pending + end.unverified > 0 || end.stop.is_some() {
        Exit::Incomplete
    } else if end.failed > 0 {
        Exit::SomeFailed
    } else {
        Exit::Ok
    })
}

/// The built-in emulator for a group file: one workspace, and — unless `--create-missing` is
/// to show creating them — every group the file names by name, empty.
async fn start_emulator_for(
    bytes: &[u8],
    source: &str,
    options: &GroupOptions,
    create_missing: bool,
) -> Result<crate::emulator::prolific::RunningProlific, Failure> {
    use crate::emulator::prolific::{ProlificConfig, ProlificSeed, RunningProlific};
    let mut seed = ProlificSeed::new();
    let ws = seed.workspace("Emulator", "GBP", 100_000_000);
    if !create_missing && let Ok(f) = crate::input::parse_groups(bytes, source, options) {
        let mut seen = std::collections::HashSet::new();
        for r in f {
            if crate::ids::check_prolific_id(&r.group).is_err() && seen.insert(r.group.clone()) {
                seed.group(&ws, &r.group, &[]);
            }
        }
    }
    RunningProlific::start_loopback(seed.build(), ProlificConfig::default())
        .await
        .map_err(|e| {
            Failure::new(
                FailureKind::Unreachable,
                format!("failed to start the built-in Prolific emulator: {e}"),
            )
        })
}

/// `payout status` of a group batch.
pub fn status(ctx: &Ctx, batch: &crate::journal::BatchInfo, s: &GroupStatus) -> Outcome {
    if ctx.json() {
        ctx.put("batch", &batch.name);
        ctx.put("source", &batch.source);
        ctx.put("groups", s);
        return Ok(Exit::Ok);
    }
    let mut text = format!(
        "Batch {} on Prolific: participant groups ({})\n  done        {:>6}  ({} already so: nothing sent)\n  unverified  {:>6}  (sent, not yet seen in the member list)\n  pending     {:>6}\n  failed      {:>6}\n",
        batch.name, batch.source, s.done, s.no_ops, s.unverified, s.pending, s.failed
    );
    if s.cancelled > 0 {
        text.push_str(&format!(
            "  cancelled   {:>6}  (closed by `payout cancel`; never sent)\n",
            s.cancelled
        ));
    }
    if let Some(closed) = &batch.closed {
        text.push_str(&format!("  the batch is {}\n", closed.how.as_str()));
    }
    for g in &s.groups {
        let size = |n: Option<u64>| n.map_or("?".to_owned(), |n| n.to_string());
        text.push_str(&format!(
            "  group {:?} ({}){}{}: +{} −{}; members {} before, {} at the last check\n",
            g.named,
            g.group_id.as_deref().unwrap_or("not created yet"),
            if g.created {
                ", created by this batch"
            } else {
                ""
            },
            if g.block_list { ", a block list" } else { "" },
            g.adds,
            g.removes,
            size(g.size_before),
            size(g.size_after)
        ));
    }
    ctx.printer.say(text.trim_end());
    Ok(Exit::Ok)
}

/// `payout cancel` of a group batch.
pub async fn cancel_groups(
    batch: &crate::journal::BatchInfo,
    mut journal: Journal,
    ctx: &Ctx,
) -> Outcome {
    let (_, platform) = platform_of_batch(batch)?;
    let st = cancel(
        batch,
        Arc::new(platform),
        &mut journal,
        Arc::new(StopSignal::default()),
        &MemberConfig::default(),
    )
    .await?;
    ctx.printer.say(format!(
        "Batch {} cancelled: {} changes made stay made; {} not made are closed and will not be made.",
        batch.name, st.done, st.cancelled
    ));
    let batch = journal
        .batch_by_id(batch.id)?
        .unwrap_or_else(|| batch.clone());
    status(ctx, &batch, &st)
}
