//! The plan: validated operations turned into journal items with occurrences, request tokens,
//! fees, skips and the overlaps a user must see — and the batch's fingerprint and content digest.
//!
//! Pure: the same rows and the same answers from the journal give the same plan. What other
//! batches did is asked through [`Prior`], which the journal answers; nothing here writes.
//! Rows are planned one at a time, so a file of any size is planned in bounded memory.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::ids::QualificationTypeId;
use crate::input::Row;
use crate::item::{BatchKind, ItemState, PriorItem};
use crate::journal::{BatchInfo, Journal, JournalError, NewBatch};
use crate::money::Cents;
use crate::op::{Group, Kind, Operation, Origin, QualRef};
use crate::platform::fee_for;
use crate::target::{Endpoint, Target};

/// How overlaps with other batches are shown before they are refused.
pub const MAX_LISTED_OVERLAPS: usize = 20;

pub use crate::item::{NoPrior, PlannedItem, Prior, PriorError};

/// The choices that shape a plan.
#[derive(Debug, Clone)]
pub struct PlanConfig {
    /// Set by the planner from the rows (a file holds one kind of operation).
    pub kind: BatchKind,
    pub target: Target,
    pub endpoint: Option<Endpoint>,
    /// Do again what another batch already did (new occurrences, new tokens).
    pub allow_repeat: bool,
    /// Pay bonuses for assignments that another batch already paid.
    pub allow_overlap: bool,
    /// The file may repeat an operation (the input layer allowed it); number the repeats.
    pub allow_duplicates: bool,
}

/// Counts and money of a set of operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub operations: u64,
    pub bonuses: u64,
    pub scores: u64,
    pub revokes: u64,
    pub blocks: u64,
    pub unblocks: u64,
    pub workers: u64,
    pub bonus: Cents,
    pub fee: Cents,
    /// E-mails the platform will send workers.
    pub notifications: u64,
}

impl Totals {
    pub fn grand_total(&self) -> Cents {
        self.bonus + self.fee
    }

    /// What `available` lacks to pay these bonuses with their fees (`None`: nothing is
    /// missing, or there are no bonuses to pay).
    pub fn balance_shortfall(&self, available: Cents) -> Option<Cents> {
        if self.bonuses == 0 {
            return None;
        }
        crate::money::shortfall(available, self.grand_total())
    }

    pub fn count(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Bonus => self.bonuses,
            Kind::Score => self.scores,
            Kind::Revoke => self.revokes,
            Kind::Block => self.blocks,
            Kind::Unblock => self.unblocks,
        }
    }

    /// Adds `n` operations of `kind` moving `amount` with `fee`.
    pub fn add(&mut self, kind: Kind, n: u64, amount: Cents, fee: Cents, notifications: u64) {
        self.operations += n;
        match kind {
            Kind::Bonus => self.bonuses += n,
            Kind::Score => self.scores += n,
            Kind::Revoke => self.revokes += n,
            Kind::Block => self.blocks += n,
            Kind::Unblock => self.unblocks += n,
        }
        self.bonus += amount;
        self.fee += fee;
        self.notifications += notifications;
    }
}

/// Why a row cannot simply be added: another batch touches the same group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Overlap {
    pub origin: Origin,
    pub what: String,
    pub other_batch: String,
    pub other_origin: Origin,
    pub other_what: String,
    pub other_state: ItemState,
    pub reason: OverlapReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapReason {
    /// The other batch has not finished this group: running both could do it twice.
    Unfinished,
    /// The other batch already paid a (different) bonus for this assignment.
    AlreadyPaid,
}

/// What planning a whole file found.
#[derive(Debug, Clone, Default)]
pub struct PlanSummary {
    /// Content + ledger + options: identifies the batch.
    pub fingerprint: String,
    /// Content only: identifies what a rehearsal rehearsed.
    pub content_digest: String,
    /// Operations to do.
    pub totals: Totals,
    pub skipped: u64,
    /// The first overlaps found, and how many there are.
    pub overlaps: Vec<Overlap>,
    pub overlap_count: u64,
    /// Batches the overlaps are with, by name.
    pub overlapping_batches: Vec<String>,
    /// Two changes of one qualification group in the file, named once by name and once by
    /// ID (found only once names are resolved): the first few, and how many.
    pub conflicts: Vec<String>,
    pub conflict_count: u64,
    /// Grants the workers already hold, made quietly, sent again for the e-mail asked now.
    pub renotified: u64,
    /// States skipped because the journal's latest decision on their group is the same (the
    /// first [`MAX_HELD_CHECKED`]), for the platform to confirm.
    pub held: Vec<Operation>,
    /// States the journal says hold, planned again because the platform showed otherwise.
    pub restored: u64,
}

/// Plans rows one at a time.
pub struct Planner<'p> {
    config: PlanConfig,
    prior: &'p mut dyn Prior,
    seq: u32,
    in_file: HashMap<i64, u32>,
    workers: HashSet<u64>,
    fingerprint: Sha256,
    content: Sha256,
    summary: PlanSummary,
    overlapping: HashSet<String>,
    /// Qualification names resolved to type IDs (before planning: everything is keyed on the
    /// ID), and the names each ID goes by in the journal.
    quals: Option<Resolver>,
    /// Groups whose state the journal says holds and the platform shows does not.
    unheld: HashSet<i64>,
}

/// States skipped on the journal's word that a plan lists for the platform to confirm, at most.
pub const MAX_HELD_CHECKED: usize = 20_000;

/// Names the planner resolves, and what it saw of state groups in the file (to find two
/// changes of one group spelled by name and by ID).
struct Resolver {
    ids: HashMap<String, QualificationTypeId>,
    names: HashMap<QualificationTypeId, Vec<String>>,
    /// Qualification groups of the file (their hash), where first seen and whether by name.
    seen: HashMap<i64, (Origin, bool)>,
}

impl<'p> Planner<'p> {
    /// A planner for rows paid on `config`'s target. The batch's kind is that of its rows (a
    /// file holds one kind), taken from the first.
    pub fn new(config: PlanConfig, prior: &'p mut dyn Prior) -> Planner<'p> {
        Planner {
            config,
            prior,
            seq: 0,
            in_file: HashMap::new(),
            workers: HashSet::new(),
            fingerprint: Sha256::new(),
            content: Sha256::new(),
            summary: PlanSummary::default(),
            overlapping: HashSet::new(),
            quals: None,
            unheld: HashSet::new(),
        }
    }

    /// Plans the states of these groups as not holding, whatever the journal says: the
    /// platform showed otherwise (see [`PlanSummary::held`]).
    pub fn not_holding(mut self, groups: HashSet<i64>) -> Self {
        self.unheld = groups;
        self
    }

    /// Plans with these qualification names resolved to type IDs: each row naming one is
    /// planned — grouped, compared, skipped, recorded — as the ID, and the journal's items of
    /// other batches that name it count as the ID's. The fingerprint and the content digest
    /// stay those of the file as written (a name means other IDs on other targets).
    pub fn resolving(
        mut self,
        names: impl IntoIterator<Item = (String, QualificationTypeId)>,
    ) -> Self {
        let ids: HashMap<String, QualificationTypeId> = names.into_iter().collect();
        if ids.is_empty() {
            return self;
        }
        let mut by_id: HashMap<QualificationTypeId, Vec<String>> = HashMap::new();
        for (name, id) in &ids {
            by_id.entry(id.clone()).or_default().push(name.clone());
        }
        self.quals = Some(Resolver {
            ids,
            names: by_id,
            seen: HashMap::new(),
        });
        self
    }

    /// `op` with its qualification named by ID when the name is resolved.
    fn resolve(&self, op: Operation) -> Operation {
        match &self.quals {
            Some(r) => resolve_with(&r.ids, op),
            None => op,
        }
    }

    /// Items of other batches in `group`, and — for a group keyed on a type ID — in the groups
    /// that name that type, named by ID like the rest, oldest first.
    fn group_elsewhere(&mut self, group: &Group) -> Result<Vec<PriorItem>, PriorError> {
        let mut items = self.prior.group_elsewhere(group)?;
        if let (
            Some(r),
            Group::Qualification {
                worker,
                qualification: QualRef::Id(id),
            },
        ) = (&self.quals, group)
            && let Some(names) = r.names.get(id)
        {
            for name in names.clone() {
                let named = Group::Qualification {
                    worker: worker.clone(),
                    qualification: QualRef::Name(name),
                };
                items.extend(self.prior.group_elsewhere(&named)?);
            }
            let ids = &self.quals.as_ref().expect("checked above").ids;
            for p in &mut items {
                p.item.op = resolve_with(ids, p.item.op.clone());
            }
            items.sort_by_key(|p| (p.item.batch, p.item.seq));
        }
        Ok(items)
    }

    /// Items of other batches that are the same operation as `op`, whichever way they name
    /// its qualification type.
    fn same_ops(&mut self, op: &Operation) -> Result<Vec<PriorItem>, PriorError> {
        if self.quals.is_none() || op.kind() == Kind::Bonus {
            return self.prior.same_ops(op);
        }
        let mut items = self.group_elsewhere(&op.group())?;
        items.retain(|p| p.item.op.same_as(op));
        Ok(items)
    }

    /// Notes a qualification group of the file; two changes of one group, one naming the type
    /// and one giving its ID, are a conflict (the input's own check sees two spellings).
    fn note_group(&mut self, origin: &Origin, spelled: &Operation, op: &Operation) {
        let Some(r) = &mut self.quals else { return };
        if op.kind() == Kind::Bonus || op.qualification().is_none() {
            return;
        }
        let by_name = spelled.qualification().and_then(QualRef::name).is_some();
        let group = op.group();
        match r.seen.get(&group.hash64()) {
            Some((first, first_by_name)) if *first_by_name != by_name => {
                self.summary.conflict_count += 1;
                if self.summary.conflicts.len() < MAX_LISTED_OVERLAPS {
                    self.summary.conflicts.push(format!(
                        "{origin} and {first} both change {group} (one names the type, the other gives its ID); keep one"
                    ));
                }
            }
            Some(_) => {}
            None => {
                r.seen.insert(group.hash64(), (origin.clone(), by_name));
            }
        }
    }

    /// The kind of batch planned (known once a row was planned).
    pub fn kind(&self) -> BatchKind {
        self.config.kind
    }

    fn start(&mut self, first: &Operation) {
        self.config.kind = match first.kind() {
            Kind::Bonus => BatchKind::Bonus,
            _ => BatchKind::Qualification,
        };
        self.fingerprint.update(b"payout-batch-v1\x1f");
        self.fingerprint.update(self.config.target.as_str());
        self.fingerprint.update(b"\x1f");
        self.fingerprint.update(variant(&self.config));
        self.content.update(b"payout-content-v1\x1f");
        self.content.update(self.config.kind.as_str());
    }

    /// Plans the next row of the file.
    pub fn push(&mut self, row: Row) -> Result<PlannedItem, PriorError> {
        let Row { origin, op } = row;
        if self.seq == 0 {
            self.start(&op);
        }
        let in_file = if self.config.allow_duplicates {
            let n = self.in_file.entry(op.identity_hash()).or_insert(0);
            *n += 1;
            *n - 1
        } else {
            0
        };
        for h in [&mut self.fingerprint, &mut self.content] {
            h.update(b"\x1e");
            op.hash_content(h, in_file);
        }
        let op = if self.quals.is_some() {
            let resolved = self.resolve(op.clone());
            self.note_group(&origin, &op, &resolved);
            resolved
        } else {
            op
        };
        let same = self.same_ops(&op)?;
        // A state (score, revoke, block) is asked for *now*: what matters is the group's
        // latest decision, not whether the same operation was ever done.
        let group = if op.kind() == Kind::Bonus {
            None
        } else {
            Some(self.group_elsewhere(&op.group())?)
        };
        let (occurrence, state, note) = if self.config.allow_repeat {
            // A deliberate repeat needs an occurrence (and so a token) not used before.
            let base = same
                .iter()
                .filter(|p| p.item.state != ItemState::Skipped)
                .map(|p| p.item.occurrence + 1)
                .max()
                .unwrap_or(0);
            (base + in_file, ItemState::Pending, None)
        } else if let Some(p) = done_before(&op, in_file, &same, group.as_deref())
            .filter(|_| op.kind() == Kind::Bonus || !self.unheld.contains(&op.group().hash64()))
        {
            if op.kind() != Kind::Bonus && self.summary.held.len() < MAX_HELD_CHECKED {
                self.summary.held.push(op.clone());
            }
            let note = format!(
                "already {} in batch {} ({}); --allow-repeat does it again",
                op.kind().done_word(),
                p.batch_name,
                p.item.origin
            );
            (in_file, ItemState::Skipped, Some(note))
        } else if let Some(p) = group
            .as_deref()
            .and_then(latest_decision)
            .filter(|p| decides_same(&p.item.op, &op))
        {
            // The journal's latest decision is this one, but the platform shows otherwise.
            self.summary.restored += 1;
            let note = format!(
                "already {} in batch {} ({}), but MTurk shows otherwise now: done again",
                op.kind().done_word(),
                p.batch_name,
                p.item.origin
            );
            (in_file, ItemState::Pending, Some(note))
        } else if let Some(p) = group
            .as_deref()
            .and_then(latest_decision)
            .filter(|p| told_quietly(&p.item.op, &op))
        {
            // The worker holds this score, granted without an e-mail; the user asks for one.
            self.summary.renotified += 1;
            let note = format!(
                "granted quietly in batch {} ({}); sent again so that MTurk e-mails the worker",
                p.batch_name, p.item.origin
            );
            (in_file, ItemState::Pending, Some(note))
        } else {
            (in_file, ItemState::Pending, None)
        };
        if state == ItemState::Pending {
            let group = match group {
                Some(g) => g,
                None => self.group_elsewhere(&op.group())?,
            };
            self.check_overlaps(&origin, &op, group);
            let fee = fee_for(&op).unwrap_or(Cents::ZERO);
            self.summary.totals.add(
                op.kind(),
                1,
                op.amount().unwrap_or(Cents::ZERO),
                fee,
                u64::from(op.notifies()),
            );
            self.workers.insert(worker_hash(&op));
        } else {
            self.summary.skipped += 1;
        }
        let item = PlannedItem {
            seq: self.seq,
            token: op.request_token(self.config.target.as_str(), occurrence),
            fee: fee_for(&op),
            origin,
            op,
            occurrence,
            state,
            note,
        };
        self.seq += 1;
        Ok(item)
    }

    fn check_overlaps(&mut self, origin: &Origin, op: &Operation, group: Vec<PriorItem>) {
        for p in group {
            let reason = if p.item.state.is_open() && !p.batch_closed {
                OverlapReason::Unfinished
            } else if op.kind() == Kind::Bonus
                && p.item.state == ItemState::Done
                && !p.item.op.same_as(op)
                && !self.config.allow_overlap
            {
                OverlapReason::AlreadyPaid
            } else {
                continue;
            };
            self.summary.overlap_count += 1;
            if self.overlapping.insert(p.batch_name.clone()) {
                self.summary.overlapping_batches.push(p.batch_name.clone());
            }
            if self.summary.overlaps.len() < MAX_LISTED_OVERLAPS {
                self.summary.overlaps.push(Overlap {
                    origin: origin.clone(),
                    what: describe(op),
                    other_batch: p.batch_name.clone(),
                    other_origin: p.item.origin.clone(),
                    other_what: describe(&p.item.op),
                    other_state: p.item.state,
                    reason,
                });
            }
        }
    }

    /// Ends the plan: fingerprint, digest, totals and overlaps.
    pub fn finish(mut self) -> PlanSummary {
        self.summary.totals.workers = self.workers.len() as u64;
        self.summary.fingerprint = hex::encode(self.fingerprint.finalize());
        self.summary.content_digest = hex::encode(self.content.finalize());
        self.summary
    }
}

/// `op` with a qualification name found in `ids` replaced by its type ID.
fn resolve_with(ids: &HashMap<String, QualificationTypeId>, op: Operation) -> Operation {
    let id = |q: &QualRef| match q {
        QualRef::Name(n) => ids.get(n).cloned().map(QualRef::Id),
        QualRef::Id(_) => None,
    };
    match op {
        Operation::Score {
            worker,
            qualification,
            value,
            notify,
        } => Operation::Score {
            worker,
            qualification: id(&qualification).unwrap_or(qualification),
            value,
            notify,
        },
        Operation::Revoke {
            worker,
            qualification,
            reason,
        } => Operation::Revoke {
            worker,
            qualification: id(&qualification).unwrap_or(qualification),
            reason,
        },
        other => other,
    }
}

/// The item of another batch that makes `op` needless, if one does.
///
/// A bonus is a payment: it happens once, so the `in_file`-th earlier payment of the same
/// operation (`same`) makes it done. A score, revoke, block or unblock is a state the file asks
/// for now: it is needless only when the latest decision on its group (`group`, items of
/// other batches oldest first) is the same decision — a revoke after a later grant is not.
pub fn done_before<'a>(
    op: &Operation,
    in_file: u32,
    same: &'a [PriorItem],
    group: Option<&'a [PriorItem]>,
) -> Option<&'a PriorItem> {
    match group {
        Some(group) if op.kind() != Kind::Bonus => {
            let latest = latest_decision(group)?;
            decides_same(&latest.item.op, op).then_some(latest)
        }
        _ => same
            .iter()
            .filter(|p| p.item.state == ItemState::Done)
            .nth(in_file as usize),
    }
}

/// The last operation done on a group: by the time it finished, then by batch and position
/// (the journal's order) for items recorded without one.
pub fn latest_decision(group: &[PriorItem]) -> Option<&PriorItem> {
    group
        .iter()
        .enumerate()
        .filter(|(_, p)| p.item.state == ItemState::Done)
        .max_by_key(|(i, p)| (p.item.finished_ms.unwrap_or(0), *i))
        .map(|(_, p)| p)
}

/// Whether `earlier`, done, leaves nothing for `later` to do. A score is the same decision at
/// the same value — unless the worker was not e-mailed then and is to be now: the e-mail the
/// user asks for is sent (once; a later run of it finds it e-mailed).
pub fn decides_same(earlier: &Operation, later: &Operation) -> bool {
    if earlier.group() != later.group() {
        return false;
    }
    match (earlier, later) {
        (
            Operation::Score {
                value: a,
                notify: told,
                ..
            },
            Operation::Score {
                value: b, notify, ..
            },
        ) => a == b && (*told || !*notify),
        (Operation::Revoke { .. }, Operation::Revoke { .. })
        | (Operation::Block { .. }, Operation::Block { .. })
        | (Operation::Unblock { .. }, Operation::Unblock { .. }) => true,
        _ => false,
    }
}

/// Whether `later` is `earlier`'s grant again, asked with an e-mail `earlier` did not send.
fn told_quietly(earlier: &Operation, later: &Operation) -> bool {
    matches!(
        (earlier, later),
        (
            Operation::Score { value: a, notify: false, .. },
            Operation::Score { value: b, notify: true, .. },
        ) if a == b && earlier.group() == later.group()
    )
}

/// The options that make the same rows another batch. Bonus batches keep payout 0.1's form so
/// that its journals still recognise their batches.
fn variant(config: &PlanConfig) -> String {
    let mut v = format!(
        "repeat={}\x1fendpoint={}",
        config.allow_repeat,
        config.endpoint.as_ref().map_or("", Endpoint::as_str)
    );
    if config.kind != BatchKind::Bonus {
        v.push_str("\x1fkind=");
        v.push_str(config.kind.as_str());
    }
    v
}

fn worker_hash(op: &Operation) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    op.worker().hash(&mut h);
    h.finish()
}

/// An operation in a few words, for overlap listings.
pub fn describe(op: &Operation) -> String {
    match op {
        Operation::Bonus {
            worker,
            assignment,
            amount,
            reason,
        } => format!("{amount} to {worker} for {assignment} ({reason:?})"),
        Operation::Score {
            worker,
            qualification,
            value,
            ..
        } => format!("score {value} on {qualification} for {worker}"),
        Operation::Revoke {
            worker,
            qualification,
            ..
        } => format!("revoke {qualification} from {worker}"),
        Operation::Block { worker, .. } => format!("block {worker}"),
        Operation::Unblock { worker, .. } => format!("unblock {worker}"),
    }
}

/// Plans a whole set of rows in memory (small files, tests).
pub fn plan_rows(
    rows: impl IntoIterator<Item = Row>,
    config: PlanConfig,
    prior: &mut dyn Prior,
) -> Result<(Vec<PlannedItem>, PlanSummary), PriorError> {
    let mut planner = Planner::new(config, prior);
    let mut items = Vec::new();
    for row in rows {
        items.push(planner.push(row)?);
    }
    Ok((items, planner.finish()))
}

/// Feeds every row of a source to `planner`, handing each planned item to `each`: the whole
/// plan in one pass, in bounded memory. An error of the prior's or of `each` stops it.
/// A file read once more: every row to the sink it is given.
pub type RowSource<'a> = &'a dyn Fn(&mut dyn FnMut(Row)) -> Result<(), crate::input::InputErrors>;

pub fn plan_source(
    source: RowSource<'_>,
    planner: &mut Planner<'_>,
    each: &mut dyn FnMut(PlannedItem) -> Result<(), PriorError>,
) -> Result<(), PlanError> {
    let mut failed: Option<PriorError> = None;
    source(&mut |row| {
        if failed.is_none()
            && let Err(e) = planner.push(row).and_then(&mut *each)
        {
            failed = Some(e);
        }
    })
    .map_err(PlanError::Input)?;
    match failed {
        Some(e) => Err(PlanError::Prior(e)),
        None => Ok(()),
    }
}

/// Why planning a source stopped.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Input(crate::input::InputErrors),
    /// What other batches did could not be read (or `each` failed).
    #[error(transparent)]
    Prior(PriorError),
}

/// Plans `rows` against `journal`'s ledger and records them as a new batch, without the
/// overlap checks `payout run` makes first (tests, benchmarks, tools): the one place planning
/// writes, above the journal it writes to.
pub fn plan_and_record(
    journal: &mut Journal,
    rows: impl IntoIterator<Item = crate::input::Row>,
    config: PlanConfig,
    source: &str,
) -> Result<(BatchInfo, Vec<PlannedItem>), JournalError> {
    let ledger = crate::target::ledger(config.target, config.endpoint.as_ref());
    let (items, summary) = {
        let mut prior = journal.prior(&ledger)?;
        plan_rows(rows, config.clone(), &mut prior)?
    };
    let batch = journal.insert_batch(&NewBatch {
        fingerprint: summary.fingerprint,
        content_digest: summary.content_digest,
        kind: config.kind,
        target: config.target,
        endpoint: config.endpoint,
        source: source.into(),
        options: crate::journal::BatchOptions {
            allow_repeat: config.allow_repeat,
            allow_overlap: config.allow_overlap,
            ..Default::default()
        },
    })?;
    journal.insert_items(batch.id, &items)?;
    journal.finish_import(batch.id)?;
    Ok((batch, items))
}

#[cfg(test)]
mod tests;
