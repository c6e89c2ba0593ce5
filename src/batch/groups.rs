//! The life of a Prolific participant-group batch (Prolific's qualifications and block lists),
//! in the library: read the file, check it against Prolific read-only (the token, the
//! workspace, every group it names and each group's members), say what will change (no-ops,
//! final sizes, block lists applied live), rehearse or pass the production gate, confirm,
//! record the batch, create the missing groups once, then change the memberships exactly as the
//! file asks (`engine::members`). The CLI implements [`Ui`] and maps the [`Ended`] to an exit
//! status; it decides nothing here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::prolific::{
    Ended, ProlificTarget, Ui, choose_workspace, failure, ledger_of, platform_failure,
    production_gate, read, record_rehearsal, recorded_place, same_batch,
};
use crate::engine::{MemberConfig, MemberRun, StopSignal, execute_members, verify_members};
use crate::error::{Failure, FailureKind};
use crate::ids::{GroupId, WorkspaceId};
use crate::input::{GroupOptions, GroupRow, parse_groups};
use crate::item::MemberAction;
use crate::journal::members::{
    CreateState, GroupStatus, MemberWrite, NewMemberGroup, NewMemberRow, group_status, groups_of,
    open_elsewhere,
};
use crate::journal::{Journal, JournalWriter, Write};
use crate::output::{plural, thousands};
use crate::platform::prolific::{GroupInfo, ProlificPlatform};

/// Everything a group batch needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    /// The file as given (for messages and the journal).
    pub source: String,
    pub workspace: Option<WorkspaceId>,
    pub target: ProlificTarget,
    pub dry_run: bool,
    pub skip_rehearsal: bool,
    /// Create the groups the file names that the workspace does not have (once each).
    pub create_missing: bool,
    /// `--block-list NAME`: the group of `options.group` is a block list.
    pub block_list: bool,
    pub options: GroupOptions,
    pub members: MemberConfig,
}

/// A group the file names, resolved among the workspace's groups.
#[derive(Debug, Clone)]
struct Resolved {
    named: String,
    /// `None`: to create.
    id: Option<GroupId>,
    info: Option<GroupInfo>,
    block_list: bool,
}

/// What a group's changes come to, against its members now.
#[derive(Debug, Clone, Default)]
struct Effect {
    adds: u64,
    add_no_ops: u64,
    removes: u64,
    remove_no_ops: u64,
    before: u64,
}

impl Effect {
    fn after(&self) -> u64 {
        self.before + self.adds - self.removes
    }
}

/// The content of a file as a rehearsal proves it: its changes, not where they are made.
fn content_digest(rows: &[GroupRow], create_missing: bool) -> String {
    let mut h = Sha256::new();
    h.update(b"payout prolific groups v1\n");
    if create_missing {
        h.update(b"create missing\n");
    }
    for r in rows {
        h.update(format!("\n{}|{}|{}", r.participant, r.group, r.action.as_str()).as_bytes());
    }
    hex::encode(h.finalize())
}

/// Finds the group a file names: by ID first, then by its exact name (several of that name are
/// refused: the ID says which).
fn find_group<'a>(named: &str, groups: &'a [GroupInfo]) -> Result<Option<&'a GroupInfo>, String> {
    if let Some(g) = groups.iter().find(|g| g.id.eq_ignore_ascii_case(named)) {
        return Ok(Some(g));
    }
    let by_name: Vec<&GroupInfo> = groups
        .iter()
        .filter(|g| g.name.as_deref().map(str::trim) == Some(named))
        .collect();
    match by_name.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        many => Err(format!(
            "{} groups of the workspace are called {named:?} ({}); give the ID of the one meant",
            many.len(),
            many.iter()
                .map(|g| g.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn lines_of(rows: &[&GroupRow]) -> String {
    let mut v: Vec<String> = rows.iter().take(8).map(|r| r.line.to_string()).collect();
    if rows.len() > 8 {
        v.push(format!("… ({} lines)", rows.len()));
    }
    v.join(", ")
}

/// Runs a participant-group batch from `bytes` (the file, read once).
pub async fn run(
    settings: &GroupSettings,
    bytes: &[u8],
    platform: Arc<ProlificPlatform>,
    journal: &mut Journal,
    ui: &dyn Ui,
    stop: Arc<StopSignal>,
) -> Result<Ended, Failure> {
    let rows = parse_groups(bytes, &settings.source, &settings.options).map_err(|e| {
        failure(
            FailureKind::InvalidInput,
            e.to_string().trim_end().to_owned(),
        )
    })?;
    let engine = &settings.members.engine;
    ui.say("Checking with Prolific (read-only): the token, the workspace, its groups and their members.");
    let workspaces = read(engine, &stop, ui, || platform.workspaces())
        .await
        .map_err(|e| platform_failure("listing the workspaces", &e))?;
    let workspace = choose_workspace(settings.workspace.as_ref(), &workspaces)?;
    let ledger = ledger_of(&settings.target, &workspace);
    let groups = read(engine, &stop, ui, || platform.groups(&workspace))
        .await
        .map_err(|e| platform_failure("listing the workspace's groups", &e))?;

    // Every group the file names, resolved once.
    let mut named: Vec<String> = Vec::new();
    let mut rows_of: HashMap<String, Vec<&GroupRow>> = HashMap::new();
    for r in &rows {
        if !rows_of.contains_key(&r.group) {
            named.push(r.group.clone());
        }
        rows_of.entry(r.group.clone()).or_default().push(r);
    }
    let block_list_name = settings
        .block_list
        .then(|| settings.options.group.clone())
        .flatten();
    let mut problems: Vec<String> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let mut resolved: Vec<Resolved> = Vec::new();
    // The key each name resolves to: a group's ID, or the name of a group to create.
    let mut key_of: HashMap<String, usize> = HashMap::new();
    for n in &named {
        let block_list = block_list_name.as_deref() == Some(n.as_str());
        let at = match find_group(n, &groups) {
            Err(why) => {
                problems.push(format!("lines {}: {why}", lines_of(&rows_of[n])));
                continue;
            }
            Ok(Some(g)) => {
                let id = GroupId::parse(&g.id).map_err(|e| {
                    failure(
                        FailureKind::Account,
                        format!(
                            "Prolific answered a group id payout cannot read ({:?}: {e})",
                            g.id
                        ),
                    )
                })?;
                match resolved.iter().position(|x| x.id.as_ref() == Some(&id)) {
                    Some(i) => {
                        resolved[i].block_list |= block_list;
                        i
                    }
                    None => {
                        resolved.push(Resolved {
                            // Its name on Prolific, also when the file gives its ID.
                            named: g.name.clone().unwrap_or_else(|| n.clone()),
                            id: Some(id),
                            info: Some(g.clone()),
                            block_list,
                        });
                        resolved.len() - 1
                    }
                }
            }
            Ok(None) if crate::ids::check_prolific_id(n).is_ok() => {
                problems.push(format!(
                    "lines {}: {n} looks like a group ID, and no group of the workspace has it",
                    lines_of(&rows_of[n])
                ));
                continue;
            }
            Ok(None) if settings.create_missing => {
                resolved.push(Resolved {
                    named: n.clone(),
                    id: None,
                    info: None,
                    block_list,
                });
                resolved.len() - 1
            }
            Ok(None) => {
                missing.push(format!("{n:?} (lines {})", lines_of(&rows_of[n])));
                continue;
            }
        };
        key_of.insert(n.clone(), at);
    }
    if !missing.is_empty() {
        return Err(failure(
            FailureKind::MissingQualification,
            format!(
                "{}: {} the file names {} not in workspace {workspace}: {}; nothing was sent",
                settings.source,
                plural(missing.len() as u64, "group"),
                if missing.len() == 1 { "is" } else { "are" },
                missing.join(", ")
            ),
        )
        .with_fix("check the names on Prolific's Participants → Groups page (or give the group IDs); to create them, run again with --create-missing"));
    }
    // The one definition of "the same change": a participant in a group, the group named by its
    // name or its ID. Asked twice the same way it is one change; both ways, a contradiction.
    let mut asks: HashMap<(usize, &str), (MemberAction, u64)> = HashMap::new();
    let mut repeats: Vec<(u64, u64)> = Vec::new();
    for r in &rows {
        let Some(&k) = key_of.get(&r.group) else {
            continue;
        };
        match asks.get(&(k, r.participant.as_str())) {
            Some((a, line)) if *a != r.action => problems.push(format!(
                "lines {line} and {}: participant {} is both added to and removed from group {}",
                r.line, r.participant, resolved[k].named
            )),
            Some((_, first)) => repeats.push((r.line, *first)),
            None => {
                asks.insert((k, r.participant.as_str()), (r.action, r.line));
            }
        }
    }
    if !problems.is_empty() {
        return Err(failure(
            FailureKind::InvalidInput,
            format!(
                "{}: {}; nothing was sent\n  {}",
                settings.source,
                plural(problems.len() as u64, "problem"),
                problems
                    .iter()
                    .take(50)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ),
        )
        .with_fix(
            "say each participant once per group (add or remove), and name each group once",
        ));
    }
    if let Some((line, first)) = repeats.first() {
        let n = repeats.len();
        ui.say(&format!(
            "{n} line{} the same change as an earlier line (line {line} repeats line {first}): each change is made once.",
            if n == 1 { " asks" } else { "s ask" }
        ));
    }
    let repeated: HashSet<u64> = repeats.iter().map(|(l, _)| *l).collect();

    // Each group's members now: what is already so, and the sizes after.
    let mut effects: Vec<Effect> = vec![Effect::default(); resolved.len()];
    for (k, g) in resolved.iter().enumerate() {
        let members: HashSet<String> = match &g.id {
            Some(id) => read(engine, &stop, ui, || {
                crate::platform::GroupPlatform::member_ids(&*platform, id)
            })
            .await
            .map_err(|e| platform_failure("listing a group's members", &e))?,
            None => HashSet::new(),
        };
        effects[k].before = members.len() as u64;
        for ((key, p), (action, _)) in &asks {
            if *key != k {
                continue;
            }
            let is = members.contains(*p);
            match (action, is) {
                (MemberAction::Add, true) => effects[k].add_no_ops += 1,
                (MemberAction::Add, false) => effects[k].adds += 1,
                (MemberAction::Remove, true) => effects[k].removes += 1,
                (MemberAction::Remove, false) => effects[k].remove_no_ops += 1,
            }
        }
    }
    let plan = plan_lines(&resolved, &effects);
    for l in &plan {
        ui.say(l);
    }

    // The batch this file already is on this ledger, if any.
    let digest = content_digest(&rows, settings.create_missing);
    let (fingerprint, existing) = same_batch(journal, &digest, &ledger, "changed")?;
    // Another open batch changing the same membership: one of them would undo the other.
    let mut overlaps: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in &rows {
        let Some(g) = key_of.get(&r.group).map(|&k| &resolved[k]) else {
            continue;
        };
        if let Some(other) = open_elsewhere(
            journal.conn(),
            &ledger,
            g.id.as_ref().map(GroupId::as_str),
            &g.named,
            r.participant.as_str(),
            existing.as_ref().map(|(id, _)| *id),
        )
        .map_err(Failure::from)?
        {
            overlaps.entry(other).or_default().push(r.line);
        }
    }
    if let Some((other, lines)) = overlaps.iter().next() {
        return Err(failure(
            FailureKind::Overlap,
            format!(
                "{} of this file change memberships that batch {other} has not finished changing (lines {}{})",
                plural(lines.len() as u64, "line"),
                lines.iter().take(8).map(u64::to_string).collect::<Vec<_>>().join(", "),
                if lines.len() > 8 { ", …" } else { "" }
            ),
        )
        .with_fix(format!(
            "finish it first (`payout resume {other}`), or cancel it (`payout cancel {other}`); nothing was sent"
        )));
    }

    if settings.dry_run {
        record_rehearsal(journal, &digest, &ledger, &settings.source, ui)?;
        return Ok(Ended::DryRun { passed: true });
    }
    let emulator = settings.target == ProlificTarget::Emulator;
    production_gate(
        journal,
        emulator,
        &digest,
        &ledger,
        settings.skip_rehearsal,
        &settings.source,
        ui,
        ", and group changes apply live to published studies",
    )?;

    let to_change: u64 = effects.iter().map(|e| e.adds + e.removes).sum::<u64>()
        + resolved.iter().filter(|g| g.id.is_none()).count() as u64;
    let batch = match existing {
        Some((id, name)) => {
            ui.say(&format!(
                "Continuing batch {name} (same file, same workspace)."
            ));
            id
        }
        None => {
            if !emulator && to_change > 0 {
                let mut lines = vec![format!(
                    "Prolific workspace {workspace}: {} to change (applied live to every study that uses these groups):",
                    plural(to_change, "membership")
                )];
                lines.extend(plan.iter().cloned());
                if !ui.confirm_changes(&lines) {
                    return Err(failure(
                        FailureKind::Confirmation,
                        "not confirmed: nothing was changed",
                    )
                    .with_fix("run the same command again and confirm, or add --yes in a script"));
                }
            }
            let new_groups: Vec<NewMemberGroup> = resolved
                .iter()
                .zip(&effects)
                .map(|(g, e)| NewMemberGroup {
                    named: g.named.clone(),
                    group_id: g.id.clone(),
                    block_list: g.block_list,
                    size_before: g.id.as_ref().map(|_| e.before),
                })
                .collect();
            let new_rows: Vec<NewMemberRow> = rows
                .iter()
                .filter(|r| !repeated.contains(&r.line))
                .map(|r| NewMemberRow {
                    line: r.line,
                    group_key: key_of[&r.group] as u32,
                    participant: r.participant.clone(),
                    action: r.action,
                })
                .collect();
            let name = format!("groups-{}", &digest[..6]);
            let id = journal
                .record_group_batch(
                    &name,
                    &fingerprint,
                    &ledger,
                    &settings.source,
                    settings.skip_rehearsal,
                    emulator,
                    &new_groups,
                    &new_rows,
                )
                .map_err(Failure::from)?;
            ui.say(&format!(
                "New batch {name}: {} in {}.",
                plural(new_rows.len() as u64, "change"),
                plural(new_groups.len() as u64, "group")
            ));
            id
        }
    };
    change_batch(
        batch,
        &workspace,
        platform,
        journal,
        ui,
        stop,
        &settings.members,
    )
    .await
}

/// What the plan says of each group: its changes, the no-ops, its size before and after, and
/// what a block list means.
fn plan_lines(groups: &[Resolved], effects: &[Effect]) -> Vec<String> {
    let mut out = Vec::new();
    for (g, e) in groups.iter().zip(effects) {
        let what = match &g.id {
            Some(id) => format!("group {:?} ({id})", g.named),
            None => format!("group {:?} (to be created, once)", g.named),
        };
        out.push(format!(
            "  {what}: {} to add, {} to remove; {} already so (no-op{}); {} → {} members",
            thousands(e.adds),
            thousands(e.removes),
            thousands(e.add_no_ops + e.remove_no_ops),
            if e.add_no_ops + e.remove_no_ops == 1 {
                ""
            } else {
                "s"
            },
            thousands(e.before),
            thousands(e.after())
        ));
        if g.block_list {
            let feeders = g
                .info
                .as_ref()
                .map(GroupInfo::feeder_names)
                .unwrap_or_default();
            out.push(format!(
                "    a block list: the change applies at once, live, to every published study that blocks it (Prolific's API does not list those studies){}",
                if feeders.is_empty() {
                    String::new()
                } else {
                    format!("; studies that add their participants to it: {}", feeders.join(", "))
                }
            ));
        }
    }
    out
}

/// Creates the batch's groups that are only intended (looked for by name first: a creation
/// whose answer was lost, or one a crash cut off, is found, never made twice), then makes
/// every change, with a progress line while it works.
async fn change_batch(
    batch: i64,
    workspace: &WorkspaceId,
    platform: Arc<ProlificPlatform>,
    journal: &mut Journal,
    ui: &dyn Ui,
    stop: Arc<StopSignal>,
    cfg: &MemberConfig,
) -> Result<Ended, Failure> {
    create_intended(batch, workspace, &platform, journal, ui, &stop, cfg).await?;
    let groups: Vec<(u32, GroupId)> = groups_of(journal.conn(), batch)
        .map_err(Failure::from)?
        .into_iter()
        .filter_map(|g| Some((g.key, GroupId::parse(g.group_id.as_deref()?).ok()?)))
        .collect();
    let cfg = cfg.clone();
    let end = journal
        .with_writer(|w: Arc<JournalWriter>| async move {
            let run = MemberRun {
                platform,
                journal: w.clone(),
                batch,
                groups,
                cfg,
                stop,
            };
            let work = execute_members(&run);
            tokio::pin!(work);
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    end = &mut work => break end,
                    _ = tick.tick() => {
                        if let Some(s) = w.read(move |c| group_status(c, batch)).await? {
                            ui.progress(&progress_line(&s));
                        }
                    }
                }
            }
        })
        .await
        .map_err(Failure::from)?;
    ui.progress("");
    Ok(Ended::Groups(end))
}

/// "1,200 of 2,000 changes done, 300 sent, not yet seen in the member lists".
pub fn progress_line(s: &GroupStatus) -> String {
    let mut line = format!(
        "{} of {} changes done",
        thousands(s.done),
        thousands(s.rows)
    );
    if s.unverified > 0 {
        line.push_str(&format!(
            ", {} sent, not yet seen in the member lists",
            thousands(s.unverified)
        ));
    }
    line
}

async fn create_intended(
    batch: i64,
    workspace: &WorkspaceId,
    platform: &ProlificPlatform,
    journal: &mut Journal,
    ui: &dyn Ui,
    stop: &StopSignal,
    cfg: &MemberConfig,
) -> Result<(), Failure> {
    let intended: Vec<_> = groups_of(journal.conn(), batch)
        .map_err(Failure::from)?
        .into_iter()
        .filter(|g| g.create == Some(CreateState::Intended))
        .collect();
    for g in intended {
        // Twice at most: look, create; and after a creation that proved nothing, look again.
        let mut created = false;
        let id = loop {
            let groups = read(&cfg.engine, stop, ui, || platform.groups(workspace))
                .await
                .map_err(|e| platform_failure("listing the workspace's groups", &e))?;
            let found: Vec<&GroupInfo> = groups
                .iter()
                .filter(|x| x.name.as_deref().map(str::trim) == Some(g.named.as_str()))
                .collect();
            match found.as_slice() {
                [one] => {
                    if !created {
                        ui.say(&format!(
                            "Group {:?} is there already ({}): it is used, not created again.",
                            g.named, one.id
                        ));
                    }
                    break one.id.clone();
                }
                [] if !created => {}
                [] => {
                    return Err(failure(
                        FailureKind::Unreachable,
                        format!(
                            "the creation of group {:?} was not confirmed: Prolific's answer proved nothing and the group is not in the workspace's list",
                            g.named
                        ),
                    )
                    .with_fix("run the same command again: it looks for the group by name before it creates it"));
                }
                many => {
                    return Err(failure(
                        FailureKind::Account,
                        format!(
                            "{} groups are called {:?} in the workspace ({}); payout created at most one",
                            many.len(),
                            g.named,
                            many.iter().map(|x| x.id.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    )
                    .with_fix("delete the extra one on Prolific, then run the same command again"));
                }
            }
            if stop.is_stopped() {
                return Err(failure(
                    FailureKind::Interrupted,
                    "stopped before creating a group",
                ));
            }
            created = true;
            match platform.create_group(workspace, &g.named).await {
                Ok(info) => {
                    ui.say(&format!("Created group {:?} ({}).", g.named, info.id));
                    break info.id;
                }
                Err(e) if e.class == crate::platform::ErrorClass::Ambiguous => {
                    ui.say(&format!(
                        "Creating group {:?}: {e} — looking for it by name before anything else",
                        g.named
                    ));
                }
                Err(e) => return Err(platform_failure("creating a group", &e)),
            }
        };
        GroupId::parse(&id).map_err(|e| {
            failure(
                FailureKind::Account,
                format!("Prolific answered a group id payout cannot read ({id:?}: {e})"),
            )
        })?;
        journal
            .write(&Write::Members(MemberWrite::Created {
                batch,
                key: g.key,
                group_id: id,
            }))
            .map_err(Failure::from)?;
    }
    Ok(())
}

/// Continues a recorded group batch (`payout resume`): creations first, then every change
/// the member lists do not show yet.
pub async fn resume(
    batch: &crate::journal::BatchInfo,
    platform: Arc<ProlificPlatform>,
    journal: &mut Journal,
    ui: &dyn Ui,
    stop: Arc<StopSignal>,
    cfg: &MemberConfig,
) -> Result<Ended, Failure> {
    let (target, workspace, _) = recorded_place(batch)?;
    // Production confirms again what is left (a resume is a new decision to change groups live).
    if target == ProlificTarget::Production {
        let s = group_status(journal.conn(), batch.id)
            .map_err(Failure::from)?
            .ok_or_else(|| failure(FailureKind::TargetMismatch, "not a group batch"))?;
        let left = s.pending + s.unverified;
        if left > 0 {
            let mut lines = vec![format!(
                "Resuming batch {} in Prolific workspace {workspace}: {} of {} left (applied live to every study that uses these groups):",
                batch.name,
                plural(left, "change"),
                thousands(s.rows)
            )];
            for g in &s.groups {
                lines.push(format!(
                    "  group {:?} ({}): +{} −{} in the file",
                    g.named,
                    g.group_id.as_deref().unwrap_or("to be created, once"),
                    g.adds,
                    g.removes
                ));
            }
            if !ui.confirm_changes(&lines) {
                return Err(failure(
                    FailureKind::Confirmation,
                    "not confirmed: nothing was changed",
                )
                .with_fix("run the same command again and confirm, or add --yes in a script"));
            }
        }
    }
    change_batch(batch.id, &workspace, platform, journal, ui, stop, cfg).await
}

/// `payout cancel` of a group batch: the member lists settle every change sent; if none is
/// left unverified, the pending ones are closed and the batch is closed (what was changed stays
/// changed). Answers the batch's status after.
pub async fn cancel(
    batch: &crate::journal::BatchInfo,
    platform: Arc<ProlificPlatform>,
    journal: &mut Journal,
    stop: Arc<StopSignal>,
    cfg: &MemberConfig,
) -> Result<GroupStatus, Failure> {
    let id = batch.id;
    let groups: Vec<(u32, GroupId)> = groups_of(journal.conn(), id)
        .map_err(Failure::from)?
        .into_iter()
        .filter_map(|g| Some((g.key, GroupId::parse(g.group_id.as_deref()?).ok()?)))
        .collect();
    let cfg = cfg.clone();
    journal
        .with_writer(|w: Arc<JournalWriter>| async move {
            verify_members(&MemberRun {
                platform,
                journal: w,
                batch: id,
                groups,
                cfg,
                stop,
            })
            .await
        })
        .await
        .map_err(Failure::from)?;
    let status = group_status(journal.conn(), id)
        .map_err(Failure::from)?
        .ok_or_else(|| failure(FailureKind::TargetMismatch, "not a group batch"))?;
    if status.unverified > 0 {
        return Err(failure(
            FailureKind::Unreachable,
            format!(
                "{} of batch {} were sent and are not yet seen in their group's member list; the batch was not cancelled",
                plural(status.unverified, "change"),
                batch.name
            ),
        )
        .with_fix("run `payout cancel` again once Prolific answers: it reads the member lists first"));
    }
    journal
        .write(&Write::Members(MemberWrite::CancelPending { batch: id }))
        .map_err(Failure::from)?;
    journal
        .write(&Write::Close {
            batch: id,
            how: crate::journal::CloseKind::Cancelled,
            by: None,
        })
        .map_err(Failure::from)?;
    group_status(journal.conn(), id)
        .map_err(Failure::from)?
        .ok_or_else(|| failure(FailureKind::TargetMismatch, "not a group batch"))
}
