//! The plan as printed before a run, and a batch's summary as `status` and the end of a run
//! show it — from SQL aggregates, never by reading every row into memory.

use serde::Serialize;

use super::{count, plural};
use crate::journal::{BatchInfo, ItemState, Journal, JournalError};
use crate::money::Cents;
use crate::op::Kind;
use crate::plan::Totals;
use crate::platform::Balance;

/// How many problem rows a summary lists.
const LISTED_PROBLEMS: usize = 20;

/// The plan as printed before doing anything.
pub fn plan_text(totals: &Totals, balance: Option<&Balance>) -> String {
    let mut lines = Vec::new();
    if totals.bonuses > 0 {
        lines.push(format!(
            "  {} to {}",
            plural(totals.bonuses, "bonus"),
            plural(totals.workers, "worker")
        ));
        lines.push(format!("  bonuses     {:>14}", totals.bonus.to_string()));
        lines.push(format!(
            "  MTurk fee   {:>14}  (20 %, at least $0.01 a bonus)",
            totals.fee.to_string()
        ));
        lines.push(format!(
            "  total       {:>14}",
            totals.grand_total().to_string()
        ));
    }
    for kind in [Kind::Score, Kind::Revoke, Kind::Block, Kind::Unblock] {
        let n = totals.count(kind);
        if n > 0 {
            lines.push(format!("  {}", count(n, kind.noun())));
        }
    }
    if totals.bonuses == 0 && totals.operations > 0 {
        lines.push(format!("  {} in all", plural(totals.workers, "worker")));
    }
    if totals.scores > 0 {
        lines.push(match totals.notifications {
            0 => "  no e-mail to workers (--notify sends MTurk's notification with each grant)"
                .to_owned(),
            n => format!(
                "  {} sent by MTurk",
                count(n, ("e-mail to a worker", "e-mails to workers"))
            ),
        });
    }
    if totals.operations == 0 {
        lines.push("  nothing to do".into());
    }
    if let Some(b) = balance {
        let mut line = format!("  balance     {:>14}", b.available.to_string());
        if let Some(h) = b.on_hold.filter(|h| h.0 > 0) {
            line.push_str(&format!("  ({h} on hold)"));
        }
        lines.push(line);
        if totals.bonuses > 0 {
            match b.available.checked_sub(totals.grand_total()) {
                Some(after) => lines.push(format!("  after       {:>14}", after.to_string())),
                None => lines.push(format!(
                    "  short by    {:>14}",
                    (totals.grand_total() - b.available).to_string()
                )),
            }
        }
    }
    lines.join("\n")
}

/// Counts of one kind of operation in a batch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KindCounts {
    pub kind: String,
    pub done: u64,
    pub failed: u64,
    pub pending: u64,
    pub skipped: u64,
    pub cancelled: u64,
}

/// A batch's state as `status` and the end of a run show it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub batch: String,
    pub kind: String,
    pub target: String,
    /// The testing endpoint the batch pays through, if it replaced the target's own.
    pub endpoint: Option<String>,
    pub source: String,
    /// `cancelled` or `superseded` when the batch was closed.
    pub closed: Option<String>,
    pub rows: u64,
    /// Operations done, of every kind.
    pub done: u64,
    /// Bonuses paid, and their money.
    pub paid: u64,
    pub paid_cents: u64,
    pub paid_fee_cents: u64,
    pub skipped: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// Still open: pending, or unknown.
    pub pending: u64,
    pub pending_cents: u64,
    /// Sent without an answer that proves anything; verified before anything is sent again.
    pub unknown: u64,
    /// E-mails workers were sent with grants done.
    pub notifications: u64,
    pub by_kind: Vec<KindCounts>,
    pub failures: Vec<RowProblem>,
    pub failures_total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RowProblem {
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub kind: String,
    pub worker_id: String,
    pub what: String,
    pub state: String,
    pub message: String,
}

impl Summary {
    pub fn load(journal: &Journal, batch: &BatchInfo) -> Result<Summary, JournalError> {
        let counts = journal.kind_state_counts(batch.id)?;
        let mut s = Summary {
            batch: batch.name.clone(),
            kind: batch.kind.as_str().into(),
            target: batch.target.as_str().into(),
            endpoint: batch.endpoint.as_ref().map(|e| e.to_string()),
            source: batch.source.clone(),
            closed: batch.closed.as_ref().map(|c| c.how.as_str().to_owned()),
            rows: 0,
            done: 0,
            paid: 0,
            paid_cents: 0,
            paid_fee_cents: 0,
            skipped: 0,
            failed: 0,
            cancelled: 0,
            pending: 0,
            pending_cents: 0,
            unknown: 0,
            notifications: 0,
            by_kind: Vec::new(),
            failures: Vec::new(),
            failures_total: 0,
        };
        for kind in Kind::ALL {
            let mine: Vec<_> = counts.iter().filter(|c| c.kind == kind).collect();
            if mine.is_empty() {
                continue;
            }
            let n = |pred: &dyn Fn(ItemState) -> bool| -> u64 {
                mine.iter().filter(|c| pred(c.state)).map(|c| c.count).sum()
            };
            s.by_kind.push(KindCounts {
                kind: kind.as_str().into(),
                done: n(&|st| st == ItemState::Done),
                failed: n(&|st| st == ItemState::Failed),
                pending: n(&ItemState::is_open),
                skipped: n(&|st| st == ItemState::Skipped),
                cancelled: n(&|st| st == ItemState::Cancelled),
            });
        }
        for c in &counts {
            s.rows += c.count;
            match c.state {
                ItemState::Done => {
                    s.done += c.count;
                    s.notifications += c.notifications;
                    if c.kind == Kind::Bonus {
                        s.paid += c.count;
                        s.paid_cents += c.amount.0;
                        s.paid_fee_cents += c.fee.0;
                    }
                }
                ItemState::Skipped => s.skipped += c.count,
                ItemState::Failed => s.failed += c.count,
                ItemState::Cancelled => s.cancelled += c.count,
                ItemState::Pending | ItemState::InFlight | ItemState::Unknown => {
                    s.pending += c.count;
                    s.pending_cents += c.amount.0;
                    if c.state != ItemState::Pending {
                        s.unknown += c.count;
                    }
                }
            }
        }
        let (problems, total) = journal.problem_items(batch.id, LISTED_PROBLEMS)?;
        s.failures_total = total;
        s.failures = problems
            .into_iter()
            .map(|i| RowProblem {
                line: i.origin.line,
                column: i.origin.column.clone(),
                kind: i.op.kind().as_str().into(),
                worker_id: i.op.worker().to_string(),
                what: crate::plan::describe(&i.op),
                state: i.state.as_str().into(),
                message: i
                    .note
                    .clone()
                    .filter(|_| i.state == ItemState::Failed)
                    .or_else(|| i.error.clone())
                    .unwrap_or_default(),
            })
            .collect();
        Ok(s)
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        if self.kind == "bonus" {
            s.push_str(&format!(
                "  paid     {:>6}  {} (+ {} fee)",
                self.paid,
                Cents(self.paid_cents),
                Cents(self.paid_fee_cents)
            ));
        } else {
            s.push_str(&format!("  done     {:>6}", self.done));
            let parts: Vec<String> = self
                .by_kind
                .iter()
                .filter(|k| k.done > 0)
                .map(|k| {
                    let word = Kind::parse(&k.kind).map_or("done", Kind::done_word);
                    format!("{} {word}", k.done)
                })
                .collect();
            if !parts.is_empty() {
                s.push_str(&format!("  ({})", parts.join(", ")));
            }
            if self.notifications > 0 {
                s.push_str(&format!(
                    "; {} e-mailed",
                    plural(self.notifications, "worker")
                ));
            }
        }
        s.push_str(&format!(
            "\n  skipped  {:>6}\n  failed   {:>6}\n  pending  {:>6}",
            self.skipped, self.failed, self.pending
        ));
        if self.pending_cents > 0 {
            s.push_str(&format!("  {}", Cents(self.pending_cents)));
        }
        if self.unknown > 0 {
            s.push_str(&format!(
                " ({} sent without an answer: verified with the platform before anything is sent again)",
                self.unknown
            ));
        }
        if self.cancelled > 0 {
            s.push_str(&format!("\n  cancelled {:>5}", self.cancelled));
        }
        let failed: Vec<&RowProblem> = self
            .failures
            .iter()
            .filter(|f| f.state == "failed")
            .collect();
        if !failed.is_empty() {
            s.push_str("\n\nFailed rows (the platform's answer):");
            for f in &failed {
                let at = match &f.column {
                    Some(c) => format!("line {}, column {c}", f.line),
                    None => format!("line {}", f.line),
                };
                s.push_str(&format!("\n  {at}: {}: {}", f.what, f.message));
            }
            if self.failed as usize > failed.len() {
                s.push_str(&format!(
                    "\n  … and {} more (payout report {})",
                    self.failed as usize - failed.len(),
                    self.batch
                ));
            }
        }
        s
    }
}
