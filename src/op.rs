//! What payout does, as data: one operation type for every kind (bonus, score, revoke, block,
//! unblock), where it came from in the file, and the one definition of "the same operation".
//!
//! Everything that asks "is this the same operation?", "which operations must be verified
//! together?" or "what does this operation hash to?" asks this module; nothing else decides it.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::ids::{AssignmentId, QualificationTypeId, WorkerId};
use crate::money::Cents;

/// The kinds of operation, as the journal and reports name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Bonus,
    Score,
    Revoke,
    Block,
    Unblock,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Bonus,
        Kind::Score,
        Kind::Revoke,
        Kind::Block,
        Kind::Unblock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bonus => "bonus",
            Kind::Score => "score",
            Kind::Revoke => "revoke",
            Kind::Block => "block",
            Kind::Unblock => "unblock",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// How a count of this kind reads in a sentence ("3 bonuses", "1 score set").
    pub fn noun(self) -> (&'static str, &'static str) {
        match self {
            Kind::Bonus => ("bonus", "bonuses"),
            Kind::Score => ("score to set", "scores to set"),
            Kind::Revoke => ("qualification to revoke", "qualifications to revoke"),
            Kind::Block => ("worker to block", "workers to block"),
            Kind::Unblock => ("worker to unblock", "workers to unblock"),
        }
    }

    /// What a finished operation of this kind is called in reports.
    pub fn done_word(self) -> &'static str {
        match self {
            Kind::Bonus => "paid",
            Kind::Score => "granted",
            Kind::Revoke => "revoked",
            Kind::Block => "blocked",
            Kind::Unblock => "unblocked",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A qualification type as a file names it: by ID, or by name among the requester's own types.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QualRef {
    Id(QualificationTypeId),
    Name(String),
}

impl QualRef {
    /// An ID when the text has the shape of one (`^[A-Z0-9]+$`, at least 20 characters, as
    /// MTurk's are), a name otherwise. Names are trimmed.
    pub fn from_text(text: &str) -> QualRef {
        let text = text.trim();
        match QualificationTypeId::parse(text) {
            Ok(id) if text.len() >= 20 => QualRef::Id(id),
            _ => QualRef::Name(text.to_owned()),
        }
    }

    pub fn id(&self) -> Option<&QualificationTypeId> {
        match self {
            QualRef::Id(id) => Some(id),
            QualRef::Name(_) => None,
        }
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            QualRef::Name(n) => Some(n),
            QualRef::Id(_) => None,
        }
    }
}

impl fmt::Display for QualRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QualRef::Id(id) => write!(f, "{id}"),
            QualRef::Name(n) => write!(f, "{n:?}"),
        }
    }
}

/// One thing to do on the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// Pay `amount` to `worker` for `assignment`, with `reason` shown to the worker.
    Bonus {
        worker: WorkerId,
        assignment: AssignmentId,
        amount: Cents,
        reason: String,
    },
    /// Grant `qualification` to `worker` with score `value` (or change the score).
    Score {
        worker: WorkerId,
        qualification: QualRef,
        value: i32,
        /// Whether the platform e-mails the worker about it.
        notify: bool,
    },
    /// Take `qualification` away from `worker`.
    Revoke {
        worker: WorkerId,
        qualification: QualRef,
        reason: Option<String>,
    },
    /// Stop `worker` from working on the requester's HITs.
    Block { worker: WorkerId, reason: String },
    Unblock {
        worker: WorkerId,
        reason: Option<String>,
    },
}

/// What verification looks at together: every operation of a group is decided against one
/// observation of the platform, one group at a time, and at most one operation of a group is
/// under way at once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// All bonuses to a worker for an assignment (`ListBonusPayments` lists them together).
    Assignment {
        worker: WorkerId,
        assignment: AssignmentId,
    },
    /// A worker's score on one qualification type.
    Qualification {
        worker: WorkerId,
        qualification: QualRef,
    },
    /// Whether a worker is blocked.
    Worker { worker: WorkerId },
}

impl Group {
    /// Whether a file may hold several operations of this group. Bonuses may (several rounds
    /// for one assignment); a score, a revoke or a block is one decision per group.
    pub fn allows_many(&self) -> bool {
        matches!(self, Group::Assignment { .. })
    }

    /// A stable 63-bit hash for the journal's index; equality is always checked on the fields.
    pub fn hash64(&self) -> i64 {
        let mut h = Sha256::new();
        self.hash_into(&mut h);
        hash_to_i64(h)
    }

    /// Feeds the fields that make the group into a digest: the journal's group index and the
    /// file's repeat check (`input::dedupe`) agree on what a group is because both hash it here.
    pub(crate) fn hash_into(&self, h: &mut Sha256) {
        match self {
            Group::Assignment { worker, assignment } => {
                field(h, "assignment");
                field(h, worker.as_str());
                field(h, assignment.as_str());
            }
            Group::Qualification {
                worker,
                qualification,
            } => {
                field(h, "qualification");
                field(h, worker.as_str());
                qual_fields(h, qualification);
            }
            Group::Worker { worker } => {
                field(h, "worker");
                field(h, worker.as_str());
            }
        }
    }

    pub fn worker(&self) -> &WorkerId {
        match self {
            Group::Assignment { worker, .. }
            | Group::Qualification { worker, .. }
            | Group::Worker { worker } => worker,
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Group::Assignment { worker, assignment } => {
                write!(f, "worker {worker}, assignment {assignment}")
            }
            Group::Qualification {
                worker,
                qualification,
            } => write!(f, "worker {worker}, qualification {qualification}"),
            Group::Worker { worker } => write!(f, "worker {worker}"),
        }
    }
}

/// One field into a digest, with the separator every hash of this crate's operations uses.
pub(crate) fn field(h: &mut Sha256, text: &str) {
    // A unit separator after every field keeps boundaries unambiguous ("A1"+"2X" ≠ "A12"+"X").
    h.update(text.as_bytes());
    h.update(b"\x1f");
}

fn qual_fields(h: &mut Sha256, q: &QualRef) {
    match q {
        QualRef::Id(id) => {
            field(h, "id");
            field(h, id.as_str());
        }
        QualRef::Name(n) => {
            field(h, "name");
            field(h, n);
        }
    }
}

fn hash_to_i64(h: Sha256) -> i64 {
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    // Keep it positive so that it reads the same in every SQLite tool.
    (u64::from_le_bytes(b) >> 1) as i64
}

impl Operation {
    pub fn kind(&self) -> Kind {
        match self {
            Operation::Bonus { .. } => Kind::Bonus,
            Operation::Score { .. } => Kind::Score,
            Operation::Revoke { .. } => Kind::Revoke,
            Operation::Block { .. } => Kind::Block,
            Operation::Unblock { .. } => Kind::Unblock,
        }
    }

    pub fn worker(&self) -> &WorkerId {
        match self {
            Operation::Bonus { worker, .. }
            | Operation::Score { worker, .. }
            | Operation::Revoke { worker, .. }
            | Operation::Block { worker, .. }
            | Operation::Unblock { worker, .. } => worker,
        }
    }

    /// The money this operation moves (before fees), if any.
    pub fn amount(&self) -> Option<Cents> {
        match self {
            Operation::Bonus { amount, .. } => Some(*amount),
            _ => None,
        }
    }

    pub fn qualification(&self) -> Option<&QualRef> {
        match self {
            Operation::Score { qualification, .. } | Operation::Revoke { qualification, .. } => {
                Some(qualification)
            }
            _ => None,
        }
    }

    /// Whether the platform will e-mail the worker about it.
    pub fn notifies(&self) -> bool {
        matches!(self, Operation::Score { notify: true, .. })
    }

    pub fn group(&self) -> Group {
        match self {
            Operation::Bonus {
                worker, assignment, ..
            } => Group::Assignment {
                worker: worker.clone(),
                assignment: assignment.clone(),
            },
            Operation::Score {
                worker,
                qualification,
                ..
            }
            | Operation::Revoke {
                worker,
                qualification,
                ..
            } => Group::Qualification {
                worker: worker.clone(),
                qualification: qualification.clone(),
            },
            Operation::Block { worker, .. } | Operation::Unblock { worker, .. } => Group::Worker {
                worker: worker.clone(),
            },
        }
    }

    /// Whether `self` and `other` are the same operation: what a repeat in a file and a
    /// payment already made by another batch mean. (Whether a score, revoke or block another
    /// batch did makes a row needless is the group's *latest* decision's business:
    /// [`crate::plan::done_before`].)
    ///
    /// A bonus is the same when worker, assignment, amount and reason are; a score when worker,
    /// qualification and value are (whether the worker is e-mailed is not part of it); a
    /// revoke, block or unblock when the worker (and qualification) are.
    pub fn same_as(&self, other: &Operation) -> bool {
        self.identity() == other.identity()
    }

    /// A stable 63-bit hash of [`Operation::same_as`]'s fields, for the journal's index.
    pub fn identity_hash(&self) -> i64 {
        let mut h = Sha256::new();
        self.identity().hash_into(&mut h);
        hash_to_i64(h)
    }

    fn identity(&self) -> Identity<'_> {
        match self {
            Operation::Bonus {
                worker,
                assignment,
                amount,
                reason,
            } => Identity::Bonus(worker, assignment, *amount, reason),
            Operation::Score {
                worker,
                qualification,
                value,
                ..
            } => Identity::Score(worker, qualification, *value),
            Operation::Revoke {
                worker,
                qualification,
                ..
            } => Identity::Revoke(worker, qualification),
            Operation::Block { worker, .. } => Identity::Block(worker),
            Operation::Unblock { worker, .. } => Identity::Unblock(worker),
        }
    }

    /// Feeds every field that gives the operation its meaning into a digest (batch
    /// fingerprints and content digests). Bonuses hash exactly as payout 0.1 did, so that
    /// a journal written by it still recognises its batches.
    pub fn hash_content(&self, h: &mut Sha256, occurrence: u32) {
        match self {
            Operation::Bonus {
                worker,
                assignment,
                amount,
                reason,
            } => bonus_fields(h, worker, assignment, *amount, reason, occurrence),
            Operation::Score {
                worker,
                qualification,
                value,
                notify,
            } => {
                field(h, "score");
                field(h, worker.as_str());
                qual_fields(h, qualification);
                field(h, &value.to_string());
                field(h, if *notify { "notify" } else { "quiet" });
                h.update(occurrence.to_string().as_bytes());
            }
            Operation::Revoke {
                worker,
                qualification,
                reason,
            } => {
                field(h, "revoke");
                field(h, worker.as_str());
                qual_fields(h, qualification);
                field(h, reason.as_deref().unwrap_or(""));
                h.update(occurrence.to_string().as_bytes());
            }
            Operation::Block { worker, reason } => {
                field(h, "block");
                field(h, worker.as_str());
                field(h, reason);
                h.update(occurrence.to_string().as_bytes());
            }
            Operation::Unblock { worker, reason } => {
                field(h, "unblock");
                field(h, worker.as_str());
                field(h, reason.as_deref().unwrap_or(""));
                h.update(occurrence.to_string().as_bytes());
            }
        }
    }

    /// The `UniqueRequestToken` of an operation whose platform call takes one (bonuses):
    /// derived from its content only, so that MTurk itself refuses a repeat for 24 hours even
    /// when the journal is lost or the batch is run elsewhere. 8 + 48 = 56 characters.
    pub fn request_token(&self, target: &str, occurrence: u32) -> Option<String> {
        let Operation::Bonus {
            worker,
            assignment,
            amount,
            reason,
        } = self
        else {
            return None;
        };
        let mut h = Sha256::new();
        h.update(b"payout-token-v1\x1f");
        field(&mut h, target);
        bonus_fields(&mut h, worker, assignment, *amount, reason, occurrence);
        let digest = hex::encode(h.finalize());
        Some(format!("payout1-{}", &digest[..48]))
    }
}

fn bonus_fields(
    h: &mut Sha256,
    worker: &WorkerId,
    assignment: &AssignmentId,
    amount: Cents,
    reason: &str,
    occurrence: u32,
) {
    field(h, worker.as_str());
    field(h, assignment.as_str());
    field(h, &amount.0.to_string());
    field(h, reason);
    h.update(occurrence.to_string().as_bytes());
}

#[derive(PartialEq, Eq)]
enum Identity<'a> {
    Bonus(&'a WorkerId, &'a AssignmentId, Cents, &'a str),
    Score(&'a WorkerId, &'a QualRef, i32),
    Revoke(&'a WorkerId, &'a QualRef),
    Block(&'a WorkerId),
    Unblock(&'a WorkerId),
}

impl Identity<'_> {
    fn hash_into(&self, h: &mut Sha256) {
        match self {
            Identity::Bonus(w, a, c, r) => {
                field(h, "bonus");
                field(h, w.as_str());
                field(h, a.as_str());
                field(h, &c.0.to_string());
                field(h, r);
            }
            Identity::Score(w, q, v) => {
                field(h, "score");
                field(h, w.as_str());
                qual_fields(h, q);
                field(h, &v.to_string());
            }
            Identity::Revoke(w, q) => {
                field(h, "revoke");
                field(h, w.as_str());
                qual_fields(h, q);
            }
            Identity::Block(w) => {
                field(h, "block");
                field(h, w.as_str());
            }
            Identity::Unblock(w) => {
                field(h, "unblock");
                field(h, w.as_str());
            }
        }
    }
}

/// Where an operation came from: its line in the file, and for files with one operation per
/// cell (the requester website's worker CSV) its column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Origin {
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

impl Origin {
    pub fn line(line: u64) -> Origin {
        Origin { line, column: None }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "line {}, column {c}", self.line),
            None => write!(f, "line {}", self.line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> WorkerId {
        WorkerId::parse(s).unwrap()
    }

    fn bonus(worker: &str, assignment: &str, cents: u64, reason: &str) -> Operation {
        Operation::Bonus {
            worker: w(worker),
            assignment: AssignmentId::parse(assignment).unwrap(),
            amount: Cents(cents),
            reason: reason.into(),
        }
    }

    fn score(worker: &str, q: &str, value: i32, notify: bool) -> Operation {
        Operation::Score {
            worker: w(worker),
            qualification: QualRef::from_text(q),
            value,
            notify,
        }
    }

    #[test]
    fn the_same_operation_is_decided_by_its_identity_fields() {
        assert!(bonus("A1", "X1", 100, "r").same_as(&bonus("A1", "X1", 100, "r")));
        assert!(!bonus("A1", "X1", 100, "r").same_as(&bonus("A1", "X1", 100, "r2")));
        assert!(!bonus("A1", "X1", 100, "r").same_as(&bonus("A1", "X1", 101, "r")));
        // Whether the worker is e-mailed does not make another score.
        assert!(score("A1", "Panel", 5, true).same_as(&score("A1", "Panel", 5, false)));
        assert!(!score("A1", "Panel", 5, true).same_as(&score("A1", "Panel", 6, true)));
        let block = |r: &str| Operation::Block {
            worker: w("A1"),
            reason: r.into(),
        };
        assert!(block("spam").same_as(&block("other words")));
        assert_eq!(
            block("spam").identity_hash(),
            block("other words").identity_hash()
        );
        assert_ne!(
            bonus("A1", "X1", 100, "r").identity_hash(),
            bonus("A1", "X1", 100, "r2").identity_hash()
        );
    }

    #[test]
    fn groups_gather_what_is_verified_together() {
        let a = bonus("A1", "X1", 100, "round 1");
        let b = bonus("A1", "X1", 100, "round 2");
        assert_eq!(a.group(), b.group());
        assert_eq!(a.group().hash64(), b.group().hash64());
        assert!(a.group().allows_many());
        assert_ne!(a.group(), bonus("A1", "X2", 100, "round 1").group());
        let s = score("A1", "Panel", 5, false);
        let r = Operation::Revoke {
            worker: w("A1"),
            qualification: QualRef::from_text("Panel"),
            reason: None,
        };
        assert_eq!(s.group(), r.group());
        assert!(!s.group().allows_many());
        assert!(a.group().hash64() >= 0);
    }

    #[test]
    fn qualification_references_are_ids_only_when_they_look_like_one() {
        assert_eq!(
            QualRef::from_text("3TDQ1F4SL7Q8R2Z5X1V0EXAMPLE1"),
            QualRef::Id(QualificationTypeId::parse("3TDQ1F4SL7Q8R2Z5X1V0EXAMPLE1").unwrap())
        );
        assert_eq!(
            QualRef::from_text(" Past participants "),
            QualRef::Name("Past participants".into())
        );
        // Short capitals are a name someone chose, not an ID.
        assert_eq!(QualRef::from_text("PANEL2"), QualRef::Name("PANEL2".into()));
    }

    #[test]
    fn bonus_tokens_are_those_payout_0_1_derived() {
        // The value payout 0.1 computed for this payment (see the version-1 journal fixture).
        let t = bonus("A1", "X1", 100, "r")
            .request_token("sandbox", 0)
            .unwrap();
        let mut h = Sha256::new();
        h.update(b"payout-token-v1\x1fsandbox\x1fA1\x1fX1\x1f100\x1fr\x1f0");
        assert_eq!(t, format!("payout1-{}", &hex::encode(h.finalize())[..48]));
        assert!(t.len() <= 64);
        assert_ne!(
            t,
            bonus("A1", "X1", 100, "r")
                .request_token("production", 0)
                .unwrap()
        );
        assert_ne!(
            t,
            bonus("A1", "X1", 100, "r")
                .request_token("sandbox", 1)
                .unwrap()
        );
        assert_eq!(score("A1", "Q", 1, false).request_token("sandbox", 0), None);
    }
}
