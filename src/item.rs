//! The types the layers share, below all of them: what one operation of a batch is and where
//! it stands (planned, recorded), what planning asks of what other batches did ([`Prior`]),
//! where a chunk of a chunked platform stands and what its set-up answered, and where a
//! participant-group change stands. The planner plans these, the journal records and reads
//! them back, the engines move them; none of those imports another for them.

use serde::Serialize;

use crate::money::Cents;
use crate::op::{Group, Operation, Origin};

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemState {
    /// Not sent yet, or certainly not applied.
    Pending,
    /// Intent committed, call under way. Found at open, it becomes `Unknown`.
    InFlight,
    /// Sent without an answer that proves anything: verified with the platform before
    /// anything else is sent for it.
    Unknown,
    /// Applied (a bonus paid, a score set, a worker blocked, ...).
    Done,
    /// Refused by the platform for this operation; not retried.
    Failed,
    /// Not to be done by this batch (another batch did the same operation).
    Skipped,
    /// Closed without being done (`payout cancel`, or a newer batch superseded this one).
    Cancelled,
}

impl ItemState {
    pub const ALL: [ItemState; 7] = [
        ItemState::Pending,
        ItemState::InFlight,
        ItemState::Unknown,
        ItemState::Done,
        ItemState::Failed,
        ItemState::Skipped,
        ItemState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::InFlight => "in_flight",
            ItemState::Unknown => "unknown",
            ItemState::Done => "done",
            ItemState::Failed => "failed",
            ItemState::Skipped => "skipped",
            ItemState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<ItemState> {
        ItemState::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether a run still has work to do for an operation in this state.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            ItemState::Pending | ItemState::InFlight | ItemState::Unknown
        )
    }
}

/// What a batch's file holds (and what a file is for, `--kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    /// Bonuses to pay.
    Bonus,
    /// Qualification scores to set or revoke, and workers to block or unblock.
    Qualification,
}

impl BatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchKind::Bonus => "bonus",
            BatchKind::Qualification => "qualification",
        }
    }

    /// The journal's column (anything but `qualification` is a bonus batch).
    pub fn parse(s: &str) -> BatchKind {
        match s {
            "qualification" => BatchKind::Qualification,
            _ => BatchKind::Bonus,
        }
    }
}

impl std::str::FromStr for BatchKind {
    type Err = String;

    /// `bonus` / `bonuses` or `qualification` / `qualifications`, in any case.
    fn from_str(s: &str) -> Result<BatchKind, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bonus" | "bonuses" => Ok(BatchKind::Bonus),
            "qualification" | "qualifications" => Ok(BatchKind::Qualification),
            _ => Err(format!(
                "unknown kind {s:?}; expected bonus or qualification"
            )),
        }
    }
}

impl std::fmt::Display for BatchKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One operation as the journal holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRecord {
    pub batch: i64,
    pub seq: u32,
    pub origin: Origin,
    pub op: Operation,
    pub occurrence: u32,
    pub token: Option<String>,
    pub fee: Option<Cents>,
    pub state: ItemState,
    pub attempts: u32,
    pub first_sent_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub error: Option<String>,
    pub note: Option<String>,
}

/// One item of a group or an identical operation, with the batch that holds it.
#[derive(Debug, Clone)]
pub struct PriorItem {
    pub batch_name: String,
    pub batch_closed: bool,
    pub item: ItemRecord,
}

/// An item of a group as verification sees it.
pub type GroupItem = PriorItem;

/// Where a chunk is. Stored in the journal by [`ChunkState::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChunkState {
    /// Rows assigned; no set-up id stored.
    Planned,
    /// A set-up id and the platform's amounts are stored; the pay is not sent.
    SetUp,
    /// "Pay sent" is committed: the pay request may have left. Never paid again.
    PaySent,
    /// The platform accepted the pay (202); its rows are awaited.
    Accepted,
    /// The pay's answer proved nothing (or never came): observed like an accepted one.
    Unknown,
    /// Every row of the chunk was seen paid (or the operator said so).
    Observed,
    /// The settle time passed with rows not seen: shown with its evidence, for an operator.
    NotObserved,
    /// Proven not paid (refused pay, or the operator's word): its rows return to pending.
    Void,
    /// Never paid and never will be under this chunk: its set-up was refused for its rows (they
    /// failed), or answered an amount that is not theirs (they return to pending, the batch stops).
    Failed,
}

impl ChunkState {
    pub const ALL: [ChunkState; 9] = [
        ChunkState::Planned,
        ChunkState::SetUp,
        ChunkState::PaySent,
        ChunkState::Accepted,
        ChunkState::Unknown,
        ChunkState::Observed,
        ChunkState::NotObserved,
        ChunkState::Void,
        ChunkState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChunkState::Planned => "planned",
            ChunkState::SetUp => "set_up",
            ChunkState::PaySent => "pay_sent",
            ChunkState::Accepted => "accepted",
            ChunkState::Unknown => "unknown",
            ChunkState::Observed => "observed",
            ChunkState::NotObserved => "not_observed",
            ChunkState::Void => "void",
            ChunkState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<ChunkState> {
        ChunkState::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether a pay of this chunk's id may have been sent: from here on, never again.
    pub fn pay_may_have_left(self) -> bool {
        matches!(
            self,
            ChunkState::PaySent
                | ChunkState::Accepted
                | ChunkState::Unknown
                | ChunkState::Observed
                | ChunkState::NotObserved
        )
    }

    /// Whether the chunk's rows may still be paid by something already sent: they wait to be
    /// observed and their submissions may be in no other chunk meanwhile.
    pub fn awaits_observation(self) -> bool {
        matches!(
            self,
            ChunkState::PaySent
                | ChunkState::Accepted
                | ChunkState::Unknown
                | ChunkState::NotObserved
        )
    }
}

/// What a row of a participant-group file asks of its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberAction {
    /// The participant is to be a member.
    Add,
    /// The participant is not to be a member.
    Remove,
}

impl MemberAction {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberAction::Add => "add",
            MemberAction::Remove => "remove",
        }
    }

    pub fn parse(s: &str) -> Option<MemberAction> {
        match s.trim().to_ascii_lowercase().as_str() {
            "add" | "+" => Some(MemberAction::Add),
            "remove" | "-" => Some(MemberAction::Remove),
            _ => None,
        }
    }

    /// Whether a member list that does (or does not) hold the participant shows this done.
    pub fn holds(self, is_member: bool) -> bool {
        match self {
            MemberAction::Add => is_member,
            MemberAction::Remove => !is_member,
        }
    }
}

/// Where a membership change stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Not sent, or shown not applied by the member list.
    Pending,
    /// In a call written before it was sent, whose answer proved nothing (or never came).
    Sent,
    /// Its call answered success; the member list has not been read since.
    Answered,
    /// The group's member list shows what the file asks.
    Done,
    /// Refused by Prolific for this participant; not sent again.
    Failed,
    /// Closed without being done (`payout cancel`).
    Cancelled,
}

impl MemberState {
    pub const ALL: [MemberState; 6] = [
        MemberState::Pending,
        MemberState::Sent,
        MemberState::Answered,
        MemberState::Done,
        MemberState::Failed,
        MemberState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Pending => "pending",
            MemberState::Sent => "sent",
            MemberState::Answered => "answered",
            MemberState::Done => "done",
            MemberState::Failed => "failed",
            MemberState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<MemberState> {
        MemberState::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether a run still has work to do for a change in this state.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            MemberState::Pending | MemberState::Sent | MemberState::Answered
        )
    }
}

/// One operation to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedItem {
    /// Position in the plan (0-based), stable across runs of the same file.
    pub seq: u32,
    pub origin: Origin,
    pub op: Operation,
    /// 0 for the first operation with this identity, 1 for a deliberate second one, ...
    pub occurrence: u32,
    pub token: Option<String>,
    pub fee: Option<Cents>,
    /// `Pending`, or `Skipped` when another batch already did the same operation.
    pub state: ItemState,
    pub note: Option<String>,
}

/// Why what other batches did could not be read: the answerer's own error, carried whole (the
/// planner does not know the journal's types; the journal takes its error back out).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct PriorError(pub Box<dyn std::error::Error + Send + Sync>);

/// What the journal knows that planning needs: answered by the journal, or by nothing for a
/// ledger that has no other batches.
pub trait Prior {
    /// Items of other batches on this ledger that are the same operation as `op`.
    fn same_ops(&mut self, op: &Operation) -> Result<Vec<PriorItem>, PriorError>;
    /// Items of other batches on this ledger in `group`.
    fn group_elsewhere(&mut self, group: &Group) -> Result<Vec<PriorItem>, PriorError>;
}

/// The answer for a ledger no other batch has used.
pub struct NoPrior;

impl Prior for NoPrior {
    fn same_ops(&mut self, _: &Operation) -> Result<Vec<PriorItem>, PriorError> {
        Ok(Vec::new())
    }
    fn group_elsewhere(&mut self, _: &Group) -> Result<Vec<PriorItem>, PriorError> {
        Ok(Vec::new())
    }
}

/// A set-up's answer: the id to pay and the platform's own amounts, in minor units, exactly as
/// it returned them (fees may carry fractions of a penny).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetUpAnswer {
    pub id: crate::ids::BulkBonusId,
    pub amount: crate::money::ExactMinor,
    pub fees: crate::money::ExactMinor,
    pub vat: crate::money::ExactMinor,
    pub total: crate::money::ExactMinor,
}
