//! What the journal holds, as Rust values, and how each maps to and from its columns.

use rusqlite::Row;
use serde::{Deserialize, Serialize};

use crate::ids::{AssignmentId, QualificationTypeId, WorkerId};
pub use crate::item::{BatchKind, ItemRecord, ItemState};
use crate::money::Cents;
use crate::op::{Kind, Operation, Origin, QualRef};
use crate::target::{Endpoint, Target};

/// The open states ([`ItemState::is_open`]) as an SQL list: `state IN {OPEN_STATES}`. The
/// partial index `items_open` (schemas/journal/0002_operations.sql, frozen history) is used
/// only when a query repeats its condition word for word, so every query writes it from here.
pub(crate) const OPEN_STATES: &str = "('pending', 'in_flight', 'unknown')";

/// The states of an operation sent without a known outcome, as an SQL list (the condition of
/// the partial index `items_unsettled`).
pub(crate) const UNSETTLED_STATES: &str = "('in_flight', 'unknown')";

/// Choices made when the batch was planned that change what it does; recorded with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BatchOptions {
    /// Operations another batch already did are done again.
    pub allow_repeat: bool,
    /// Bonuses for assignments another batch already paid are paid too.
    pub allow_overlap: bool,
    /// Qualification types named but missing are created.
    pub create_missing: bool,
    /// Production without a rehearsal, on the user's word.
    pub skip_rehearsal: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseKind {
    Cancelled,
    Superseded,
}

impl CloseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseKind::Cancelled => "cancelled",
            CloseKind::Superseded => "superseded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closed {
    pub how: CloseKind,
    /// The batch that superseded this one.
    pub by: Option<String>,
    pub ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    pub id: i64,
    pub name: String,
    /// Content + ledger + options: the same file run the same way is the same batch.
    pub fingerprint: String,
    /// Content only (not the target): what a rehearsal proves. `None` for version-1 batches.
    pub content_digest: Option<String>,
    pub kind: BatchKind,
    pub target: Target,
    /// A testing endpoint that replaced the target's own, if any.
    pub endpoint: Option<Endpoint>,
    pub ledger: String,
    pub source: String,
    pub created_ms: i64,
    pub options: BatchOptions,
    pub closed: Option<Closed>,
}

/// A batch about to be recorded.
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub fingerprint: String,
    pub content_digest: String,
    pub kind: BatchKind,
    pub target: Target,
    pub endpoint: Option<Endpoint>,
    pub source: String,
    pub options: BatchOptions,
}

/// The columns [`item_from_row`] reads, in order (prefix them with the items table's alias).
pub(crate) const ITEM_COLUMNS: &str = "batch_id, seq, line, col, kind, worker_id, assignment_id, \
    amount_cents, fee_cents, reason, qual_id, qual_name, value, notify, occurrence, token, state, \
    attempts, first_sent_ms, finished_ms, error, note";

/// [`ITEM_COLUMNS`] with every column qualified by `alias`.
pub(crate) fn item_columns(alias: &str) -> String {
    ITEM_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn corrupt(idx: usize, msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        rusqlite::types::Type::Text,
        Box::<dyn std::error::Error + Send + Sync>::from(msg),
    )
}

/// Reads an item from a row selected with [`ITEM_COLUMNS`] starting at column `base`.
pub(crate) fn item_from_row(r: &Row<'_>, base: usize) -> rusqlite::Result<ItemRecord> {
    let c = |i: usize| base + i;
    let kind_text: String = r.get(c(4))?;
    let kind = Kind::parse(&kind_text)
        .ok_or_else(|| corrupt(c(4), format!("unknown kind {kind_text}")))?;
    let worker: String = r.get(c(5))?;
    let worker = WorkerId::parse(&worker).map_err(|e| corrupt(c(5), e.to_string()))?;
    let qualification = || -> rusqlite::Result<QualRef> {
        let id: Option<String> = r.get(c(10))?;
        let name: Option<String> = r.get(c(11))?;
        match (id, name) {
            (Some(id), _) => QualificationTypeId::parse(&id)
                .map(QualRef::Id)
                .map_err(|e| corrupt(c(10), e.to_string())),
            (None, Some(name)) => Ok(QualRef::Name(name)),
            (None, None) => Err(corrupt(c(10), "no qualification".into())),
        }
    };
    let reason: Option<String> = r.get(c(9))?;
    let op = match kind {
        Kind::Bonus => {
            let assignment: String = r.get(c(6))?;
            Operation::Bonus {
                worker,
                assignment: AssignmentId::parse(&assignment)
                    .map_err(|e| corrupt(c(6), e.to_string()))?,
                amount: Cents(r.get::<_, i64>(c(7))? as u64),
                reason: reason.unwrap_or_default(),
            }
        }
        Kind::Score => Operation::Score {
            worker,
            qualification: qualification()?,
            value: r.get(c(12))?,
            notify: r.get::<_, Option<bool>>(c(13))?.unwrap_or(false),
        },
        Kind::Revoke => Operation::Revoke {
            worker,
            qualification: qualification()?,
            reason,
        },
        Kind::Block => Operation::Block {
            worker,
            reason: reason.unwrap_or_default(),
        },
        Kind::Unblock => Operation::Unblock { worker, reason },
    };
    let state_text: String = r.get(c(16))?;
    Ok(ItemRecord {
        batch: r.get(c(0))?,
        seq: r.get(c(1))?,
        origin: Origin {
            line: r.get::<_, i64>(c(2))? as u64,
            column: r.get(c(3))?,
        },
        op,
        occurrence: r.get(c(14))?,
        token: r.get(c(15))?,
        fee: r.get::<_, Option<i64>>(c(8))?.map(|f| Cents(f as u64)),
        state: ItemState::parse(&state_text)
            .ok_or_else(|| corrupt(c(16), format!("unknown state {state_text}")))?,
        attempts: r.get(c(17))?,
        first_sent_ms: r.get(c(18))?,
        finished_ms: r.get(c(19))?,
        error: r.get(c(20))?,
        note: r.get(c(21))?,
    })
}

/// An operation's columns, as [`crate::journal`] stores them.
pub(crate) struct OpColumns<'a> {
    pub kind: &'static str,
    pub worker: &'a str,
    pub assignment: Option<&'a str>,
    pub amount: Option<i64>,
    pub reason: Option<&'a str>,
    pub qual_id: Option<&'a str>,
    pub qual_name: Option<&'a str>,
    pub value: Option<i32>,
    pub notify: Option<bool>,
}

pub(crate) fn op_columns(op: &Operation) -> OpColumns<'_> {
    let mut c = OpColumns {
        kind: op.kind().as_str(),
        worker: op.worker().as_str(),
        assignment: None,
        amount: op.amount().map(|a| a.0 as i64),
        reason: None,
        qual_id: None,
        qual_name: None,
        value: None,
        notify: None,
    };
    if let Some(q) = op.qualification() {
        c.qual_id = q.id().map(QualificationTypeId::as_str);
        c.qual_name = q.name();
    }
    match op {
        Operation::Bonus {
            assignment, reason, ..
        } => {
            c.assignment = Some(assignment.as_str());
            c.reason = Some(reason);
        }
        Operation::Score { value, notify, .. } => {
            c.value = Some(*value);
            c.notify = Some(*notify);
        }
        Operation::Revoke { reason, .. } | Operation::Unblock { reason, .. } => {
            c.reason = reason.as_deref();
        }
        Operation::Block { reason, .. } => c.reason = Some(reason),
    }
    c
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualTypeState {
    /// A creation was recorded and its call may or may not have been applied.
    Creating,
    Created,
    Found,
}

impl QualTypeState {
    pub fn as_str(self) -> &'static str {
        match self {
            QualTypeState::Creating => "creating",
            QualTypeState::Created => "created",
            QualTypeState::Found => "found",
        }
    }

    pub fn parse(s: &str) -> QualTypeState {
        match s {
            "creating" => QualTypeState::Creating,
            "created" => QualTypeState::Created,
            _ => QualTypeState::Found,
        }
    }
}

/// A qualification type name as payout resolved it on a ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualTypeRecord {
    pub name: String,
    pub type_id: Option<QualificationTypeId>,
    pub state: QualTypeState,
}
