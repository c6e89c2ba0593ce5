//! The life of a chunk on a platform that pays in two steps (Prolific): set up (free,
//! repeatable, answers an id and the platform's own amounts), then pay that id — a call that is
//! **not idempotent**, so each id is paid at most once, ever. [`chunk_next`] is that whole life
//! as a pure table; the executor (`chunks.rs`) only drives it with real answers, and nothing
//! else decides when a pay may be sent.
//!
//! ```text
//! planned ─set up─► set_up ─commit "pay sent"─► pay_sent ─202─► accepted ─all rows seen─► observed
//!   ▲  lost or throttled set-up: set up again     │ anything else, or no answer (a 429 too)
//!   │  (an id never stored is never paid)         ▼
//!   │                                           unknown ─all rows seen─► observed
//!   │                                             │ settle time passed
//!   └── void ◄── operator: resolve --not-paid ◄─ not_observed ─ operator: --paid ─► observed
//! ```
//!
//! A pay answered with a refusal that proves it was not applied (a 4xx other than 429, or no
//! connection made at all) voids the chunk: its rows go back to be set up anew under a new id,
//! and the refused id is never sent again either.

use crate::item::ChunkState;
use crate::money::{Cents, ExactMinor};
use crate::platform::ErrorClass;

/// How a set-up's answer compares with the chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetUpCheck {
    /// The platform's `amount` is exactly the chunk's sum.
    Matches,
    /// It is not: the id is never paid and the batch stops.
    Mismatch,
}

/// What an operator said about a chunk that was not observed (`payout resolve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    NotPaid,
    Paid,
}

/// What happened to a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkEvent {
    SetUpAnswer(Result<SetUpCheck, ErrorClass>),
    /// "Pay sent" was committed to the journal (after the baseline).
    PayCommitted,
    PayAnswer(Result<(), ErrorClass>),
    /// The journal was opened again (a new run, after a crash or a stop).
    Reopened,
    /// The chunk's open rows were read back; `all_seen` when every one shows its payment.
    Observation {
        all_seen: bool,
    },
    /// The settle time since "pay sent" has passed.
    SettleExpired,
    Operator(Resolution),
    /// `payout cancel`: the batch is closed; a chunk not yet paid is never paid.
    Cancelled,
}

/// What the executor does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkAction {
    /// Send the set-up (again).
    SetUp,
    /// Wait a backoff with jitter, then set up again.
    SetUpAfterBackoff,
    /// Journal the baseline of its submissions, then commit "pay sent".
    RecordBaselineAndCommit,
    /// Send the pay — the one way an id is ever paid.
    Pay,
    /// Read its rows' submissions back.
    Observe,
    /// Its rows are decided (paid, failed, or back to pending).
    Settle,
    /// Show the evidence and leave it for an operator.
    ShowEvidence,
    /// Every chunk would fail alike (credentials, an amount that does not add up): stop.
    StopBatch,
    /// The event does not belong to this state: nothing changes.
    Ignore,
}

/// The whole life of a chunk: the state to record after `event`, and what to do next.
pub fn chunk_next(state: ChunkState, event: ChunkEvent) -> (ChunkState, ChunkAction) {
    use ChunkAction as A;
    use ChunkEvent as E;
    use ChunkState as S;
    match (state, event) {
        (S::Planned, E::SetUpAnswer(Ok(SetUpCheck::Matches))) => {
            (S::SetUp, A::RecordBaselineAndCommit)
        }
        (S::Planned, E::SetUpAnswer(Ok(SetUpCheck::Mismatch))) => (S::Failed, A::StopBatch),
        // A set-up pays nothing: whatever became of a lost one, its id was never stored, so it
        // is never paid. Set up again.
        (
            S::Planned,
            E::SetUpAnswer(Err(
                ErrorClass::Throttled
                | ErrorClass::NotSent
                | ErrorClass::Ambiguous
                | ErrorClass::AlreadyDone,
            )),
        ) => (S::Planned, A::SetUpAfterBackoff),
        (S::Planned, E::SetUpAnswer(Err(ErrorClass::Refused))) => (S::Failed, A::Settle),
        (S::Planned, E::SetUpAnswer(Err(ErrorClass::Systemic(_)))) => (S::Planned, A::StopBatch),
        (S::Planned, E::Reopened) => (S::Planned, A::SetUp),

        (S::SetUp, E::PayCommitted) => (S::PaySent, A::Pay),
        // Not sent yet: the stored id is paid, after a fresh baseline.
        (S::SetUp, E::Reopened) => (S::SetUp, A::RecordBaselineAndCommit),

        (S::PaySent, E::PayAnswer(Ok(()))) => (S::Accepted, A::Observe),
        // Proven not applied: the id is void (never sent again), its rows are set up anew.
        (S::PaySent, E::PayAnswer(Err(ErrorClass::Refused | ErrorClass::NotSent))) => {
            (S::Void, A::Settle)
        }
        (S::PaySent, E::PayAnswer(Err(ErrorClass::Systemic(_)))) => (S::Void, A::StopBatch),
        // Nothing proven — a 5xx, a timeout, a dropped connection, and a 429 too (Prolific does
        // not say a throttled pay was not queued): observe, never pay again.
        (
            S::PaySent,
            E::PayAnswer(Err(
                ErrorClass::Throttled | ErrorClass::Ambiguous | ErrorClass::AlreadyDone,
            )),
        ) => (S::Unknown, A::Observe),
        // Killed between "pay sent" and the answer: the same as a lost answer.
        (S::PaySent, E::Reopened) => (S::Unknown, A::Observe),

        (S::Accepted | S::Unknown | S::NotObserved, E::Observation { all_seen: true }) => {
            (S::Observed, A::Settle)
        }
        (S::Accepted | S::Unknown, E::Observation { all_seen: false }) => (state, A::Observe),
        (S::Accepted | S::Unknown | S::NotObserved, E::SettleExpired) => {
            (S::NotObserved, A::ShowEvidence)
        }
        (S::Accepted | S::Unknown | S::NotObserved, E::Reopened) => (state, A::Observe),
        (S::NotObserved, E::Observation { all_seen: false }) => (S::NotObserved, A::ShowEvidence),
        (S::NotObserved, E::Operator(Resolution::NotPaid)) => (S::Void, A::Settle),
        (S::NotObserved, E::Operator(Resolution::Paid)) => (S::Observed, A::Settle),

        (S::Observed | S::Void | S::Failed, E::Reopened) => (state, A::Settle),
        // Cancelled before its pay left: its id is void and its rows are closed. After, the
        // pay may have applied: cancelling changes nothing (it waits for the read-back).
        (S::Planned | S::SetUp, E::Cancelled) => (S::Void, A::Settle),
        _ => (state, A::Ignore),
    }
}

/// Which of a submission's asked amounts show as paid: the submission's `bonus_payments` now,
/// less the baseline read before the pay, as multisets (two bonuses of the same amount are two
/// payments). Each asked amount takes one matching new payment, in order.
pub fn seen_paid(baseline: &[ExactMinor], now: &[ExactMinor], asked: &[Cents]) -> Vec<bool> {
    let mut new: Vec<ExactMinor> = now.to_vec();
    for b in baseline {
        if let Some(i) = new.iter().position(|n| n == b) {
            new.swap_remove(i);
        }
    }
    asked
        .iter()
        .map(|a| {
            let want = ExactMinor::from_whole(*a);
            match new.iter().position(|n| *n == want) {
                Some(i) => {
                    new.swap_remove(i);
                    true
                }
                None => false,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Systemic;
    use std::collections::{BTreeSet, VecDeque};

    use ChunkAction as A;
    use ChunkEvent as E;
    use ChunkState as S;

    fn all_events() -> Vec<ChunkEvent> {
        let classes = [
            ErrorClass::Throttled,
            ErrorClass::NotSent,
            ErrorClass::Ambiguous,
            ErrorClass::AlreadyDone,
            ErrorClass::Refused,
            ErrorClass::Systemic(Systemic::Credentials),
        ];
        let mut v = vec![
            E::SetUpAnswer(Ok(SetUpCheck::Matches)),
            E::SetUpAnswer(Ok(SetUpCheck::Mismatch)),
            E::PayCommitted,
            E::PayAnswer(Ok(())),
            E::Reopened,
            E::Observation { all_seen: true },
            E::Observation { all_seen: false },
            E::SettleExpired,
            E::Operator(Resolution::NotPaid),
            E::Operator(Resolution::Paid),
            E::Cancelled,
        ];
        for c in classes {
            v.push(E::SetUpAnswer(Err(c)));
            v.push(E::PayAnswer(Err(c)));
        }
        v
    }

    #[test]
    fn the_life_of_a_chunk_as_a_table() {
        let t = |s, e| chunk_next(s, e);
        let sys = ErrorClass::Systemic(Systemic::Credentials);
        // Set-up: free and repeatable.
        assert_eq!(
            t(S::Planned, E::SetUpAnswer(Ok(SetUpCheck::Matches))),
            (S::SetUp, A::RecordBaselineAndCommit)
        );
        assert_eq!(
            t(S::Planned, E::SetUpAnswer(Ok(SetUpCheck::Mismatch))),
            (S::Failed, A::StopBatch)
        );
        for c in [
            ErrorClass::Throttled,
            ErrorClass::NotSent,
            ErrorClass::Ambiguous,
            ErrorClass::AlreadyDone,
        ] {
            assert_eq!(
                t(S::Planned, E::SetUpAnswer(Err(c))),
                (S::Planned, A::SetUpAfterBackoff),
                "{c:?}"
            );
        }
        assert_eq!(
            t(S::Planned, E::SetUpAnswer(Err(ErrorClass::Refused))),
            (S::Failed, A::Settle)
        );
        assert_eq!(
            t(S::Planned, E::SetUpAnswer(Err(sys))),
            (S::Planned, A::StopBatch)
        );
        assert_eq!(t(S::Planned, E::Reopened), (S::Planned, A::SetUp));
        // The one way to a pay.
        assert_eq!(t(S::SetUp, E::PayCommitted), (S::PaySent, A::Pay));
        assert_eq!(
            t(S::SetUp, E::Reopened),
            (S::SetUp, A::RecordBaselineAndCommit)
        );
        // The pay's answer.
        assert_eq!(
            t(S::PaySent, E::PayAnswer(Ok(()))),
            (S::Accepted, A::Observe)
        );
        for c in [
            ErrorClass::Throttled,
            ErrorClass::Ambiguous,
            ErrorClass::AlreadyDone,
        ] {
            assert_eq!(
                t(S::PaySent, E::PayAnswer(Err(c))),
                (S::Unknown, A::Observe),
                "{c:?}"
            );
        }
        for c in [ErrorClass::Refused, ErrorClass::NotSent] {
            assert_eq!(
                t(S::PaySent, E::PayAnswer(Err(c))),
                (S::Void, A::Settle),
                "{c:?}"
            );
        }
        assert_eq!(
            t(S::PaySent, E::PayAnswer(Err(sys))),
            (S::Void, A::StopBatch)
        );
        assert_eq!(t(S::PaySent, E::Reopened), (S::Unknown, A::Observe));
        // Observation and the settle time.
        for s in [S::Accepted, S::Unknown, S::NotObserved] {
            assert_eq!(
                t(s, E::Observation { all_seen: true }),
                (S::Observed, A::Settle)
            );
            assert_eq!(t(s, E::SettleExpired), (S::NotObserved, A::ShowEvidence));
            assert_eq!(t(s, E::Reopened), (s, A::Observe));
        }
        assert_eq!(
            t(S::Accepted, E::Observation { all_seen: false }),
            (S::Accepted, A::Observe)
        );
        assert_eq!(
            t(S::Unknown, E::Observation { all_seen: false }),
            (S::Unknown, A::Observe)
        );
        assert_eq!(
            t(S::NotObserved, E::Observation { all_seen: false }),
            (S::NotObserved, A::ShowEvidence)
        );
        // The operator's word, only on what was not observed.
        assert_eq!(
            t(S::NotObserved, E::Operator(Resolution::NotPaid)),
            (S::Void, A::Settle)
        );
        assert_eq!(
            t(S::NotObserved, E::Operator(Resolution::Paid)),
            (S::Observed, A::Settle)
        );
        assert_eq!(
            t(S::Unknown, E::Operator(Resolution::NotPaid)),
            (S::Unknown, A::Ignore)
        );
        // Final states stay final.
        for s in [S::Observed, S::Void, S::Failed] {
            for e in all_events() {
                let (next, _) = t(s, e);
                assert_eq!(next, s, "{s:?} × {e:?}");
            }
        }
    }

    #[test]
    fn only_a_committed_set_up_chunk_is_ever_paid_and_never_twice() {
        // Every state × every event: Pay comes from exactly one cell.
        for s in ChunkState::ALL {
            for e in all_events() {
                let (next, action) = chunk_next(s, e);
                if action == A::Pay {
                    assert_eq!((s, e), (S::SetUp, E::PayCommitted));
                    assert_eq!(next, S::PaySent);
                }
                // Once a pay may have left, no event leads back to a state that pays.
                if s.pay_may_have_left() {
                    assert!(
                        !matches!(next, S::Planned | S::SetUp),
                        "{s:?} × {e:?} → {next:?}"
                    );
                }
            }
        }
        // And by search: from "pay sent", SetUp is unreachable through any events.
        let mut seen = BTreeSet::new();
        let mut queue = VecDeque::from([S::PaySent]);
        while let Some(s) = queue.pop_front() {
            if !seen.insert(s) {
                continue;
            }
            for e in all_events() {
                queue.push_back(chunk_next(s, e).0);
            }
        }
        assert!(
            !seen.contains(&S::SetUp) && !seen.contains(&S::Planned),
            "{seen:?}"
        );
    }

    #[test]
    fn a_chunk_is_cancelled_only_before_its_pay_may_have_left() {
        for s in ChunkState::ALL {
            let (next, action) = chunk_next(s, E::Cancelled);
            if matches!(s, S::Planned | S::SetUp) {
                assert_eq!((next, action), (S::Void, A::Settle), "{s:?}");
            } else {
                assert_eq!((next, action), (s, A::Ignore), "{s:?}");
            }
        }
    }

    #[test]
    fn states_round_trip_their_journal_text() {
        for s in ChunkState::ALL {
            assert_eq!(ChunkState::parse(s.as_str()), Some(s));
        }
    }

    fn x(v: &[&str]) -> Vec<ExactMinor> {
        v.iter().map(|t| ExactMinor::parse(t).unwrap()).collect()
    }

    #[test]
    fn a_payment_is_seen_only_beyond_the_baseline_as_a_multiset() {
        // 150 was paid before: only a second 150 proves this row's.
        assert_eq!(
            seen_paid(&x(&["150"]), &x(&["150"]), &[Cents(150)]),
            [false]
        );
        assert_eq!(
            seen_paid(&x(&["150"]), &x(&["150", "150"]), &[Cents(150)]),
            [true]
        );
        // Two rows of the same amount need two new payments.
        assert_eq!(
            seen_paid(&x(&[]), &x(&["150"]), &[Cents(150), Cents(150)]),
            [true, false]
        );
        // A different amount is not this row's.
        assert_eq!(seen_paid(&x(&[]), &x(&["200"]), &[Cents(150)]), [false]);
        assert_eq!(
            seen_paid(&x(&["99.5"]), &x(&["99.5", "150.0"]), &[Cents(150)]),
            [true]
        );
    }
}
