//! "Was it applied?": the one place that decides, for every operation sent without an answer
//! that proves anything, whether the platform applied it — a whole group at a time.
//!
//! A group (all bonuses of a worker for an assignment; a worker's score on a qualification; a
//! worker's block) is decided against one observation of the platform, with every journal item
//! of the group in every batch on the same ledger, while the engine holds the group's lock so
//! that nothing of the group is under way.

use crate::journal::{GroupItem, ItemState};
use crate::money::Cents;
use crate::op::Operation;
use crate::platform::{PaidBonus, QualScore};

/// What verification concluded about one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The platform shows it applied; the note says how that was established.
    Applied(String),
    /// The platform shows it not applied: it may be sent again (with the same token).
    NotApplied(String),
}

/// Decides the unknown bonuses of one (worker, assignment) group from MTurk's bonus list.
///
/// Listed bonuses are matched to journal items on worker, assignment, amount **and reason**:
/// first the items the journal knows were paid claim theirs, then the unknown ones in the order
/// they were first sent, exact reasons before loose ones. A loose match (the listed reason
/// differs from ours only in whitespace, punctuation or the encoding of non-ASCII characters)
/// is said so in the note. A bonus listed for this assignment that no item claims is never
/// taken as ours unless it matches like that: a bonus of the same amount paid by hand with
/// another reason does not mark a row paid. The one case that can still under-pay: a bonus
/// paid by hand with the same amount and the same reason.
///
/// Returns a verdict for each unknown item, in the order given.
pub fn decide_bonuses(group: &[GroupItem], listed: &[PaidBonus]) -> Vec<(usize, Verdict)> {
    let mut pool: Vec<Option<&PaidBonus>> = listed.iter().map(Some).collect();
    fn bonus(g: &GroupItem) -> Option<(&str, &str, Cents, &str)> {
        match &g.item.op {
            Operation::Bonus {
                worker,
                assignment,
                amount,
                reason,
            } => Some((
                worker.as_str(),
                assignment.as_str(),
                *amount,
                reason.as_str(),
            )),
            _ => None,
        }
    }
    // Items the journal holds as paid claim their listed bonus first.
    let mut known: Vec<usize> = Vec::new();
    let mut unknown: Vec<usize> = Vec::new();
    for (i, g) in group.iter().enumerate() {
        match g.item.state {
            ItemState::Done => known.push(i),
            ItemState::Unknown | ItemState::InFlight => unknown.push(i),
            _ => {}
        }
    }
    unknown.sort_by_key(|&i| {
        (
            group[i].item.first_sent_ms.unwrap_or(i64::MAX),
            group[i].item.batch,
            group[i].item.seq,
        )
    });
    for strictness in [Match::Exact, Match::Loose] {
        known.retain(|&i| match bonus(&group[i]) {
            Some((w, a, amount, reason)) => {
                claim(&mut pool, w, a, amount, reason, strictness).is_none()
            }
            None => false,
        });
    }
    let mut verdicts: Vec<(usize, Verdict)> = Vec::new();
    let mut unclaimed: Vec<usize> = Vec::new();
    for &i in &unknown {
        let Some((w, a, amount, reason)) = bonus(&group[i]) else {
            continue;
        };
        match claim(&mut pool, w, a, amount, reason, Match::Exact) {
            Some(_) => verdicts.push((
                i,
                Verdict::Applied("found in MTurk's bonus list for this assignment".into()),
            )),
            None => unclaimed.push(i),
        }
    }
    for i in unclaimed {
        let Some((w, a, amount, reason)) = bonus(&group[i]) else {
            continue;
        };
        match claim(&mut pool, w, a, amount, reason, Match::Loose) {
            Some(listed) => verdicts.push((
                i,
                Verdict::Applied(format!(
                    "found in MTurk's bonus list with the same amount and a reason that differs only in whitespace, punctuation or encoding: {:?}",
                    listed.reason
                )),
            )),
            None => verdicts.push((
                i,
                Verdict::NotApplied(
                    "MTurk's bonus list for this assignment does not show it: not paid".into(),
                ),
            )),
        }
    }
    verdicts.sort_by_key(|(i, _)| *i);
    verdicts
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Match {
    Exact,
    Loose,
}

/// Takes the first listed bonus matching, out of the pool.
fn claim<'a>(
    pool: &mut [Option<&'a PaidBonus>],
    worker: &str,
    assignment: &str,
    amount: Cents,
    reason: &str,
    how: Match,
) -> Option<&'a PaidBonus> {
    let loose_reason = (how == Match::Loose).then(|| loose(reason));
    let slot = pool.iter_mut().find(|slot| {
        slot.is_some_and(|b| {
            b.worker == worker
                && b.assignment == assignment
                && b.amount == Some(amount)
                && match &loose_reason {
                    None => b.reason == reason,
                    Some(l) => loose(&b.reason) == *l,
                }
        })
    })?;
    slot.take()
}

/// A reason with everything but ASCII letters and digits removed, after decoding HTML
/// character references: what survives whitespace changes, punctuation changes, HTML escaping
/// and mangled non-ASCII characters.
fn loose(reason: &str) -> String {
    decode_entities(reason)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let decoded = tail.find(';').filter(|&j| j <= 10).and_then(|j| {
            let name = &tail[1..j];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, j + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Decides an unknown score or revoke from the worker's current standing.
pub fn decide_qualification(op: &Operation, now: QualScore) -> Verdict {
    match (op, now) {
        (Operation::Score { value, .. }, QualScore::Granted(v)) if v == *value => {
            Verdict::Applied(format!("MTurk shows the worker holds it with score {v}"))
        }
        (Operation::Score { value, .. }, now) => Verdict::NotApplied(format!(
            "MTurk shows {} (wanted score {value}): not applied",
            standing(now)
        )),
        (Operation::Revoke { .. }, QualScore::Granted(v)) => Verdict::NotApplied(format!(
            "MTurk shows the worker still holds it (score {v}): not revoked"
        )),
        (_, now) => Verdict::Applied(format!("MTurk shows {}", standing(now))),
    }
}

fn standing(s: QualScore) -> String {
    match s {
        QualScore::Granted(v) => format!("the worker holds it with score {v}"),
        QualScore::Revoked => "it revoked".into(),
        QualScore::None => "it never granted".into(),
    }
}

/// Decides an unknown block or unblock from whether the worker is on the block list now.
pub fn decide_block(op: &Operation, blocked: bool) -> Verdict {
    match (op, blocked) {
        (Operation::Block { .. }, true) => {
            Verdict::Applied("MTurk lists the worker as blocked".into())
        }
        (Operation::Block { .. }, false) => {
            Verdict::NotApplied("MTurk does not list the worker as blocked: not applied".into())
        }
        (_, false) => Verdict::Applied("MTurk does not list the worker as blocked".into()),
        (_, true) => {
            Verdict::NotApplied("MTurk still lists the worker as blocked: not applied".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AssignmentId, WorkerId};
    use crate::journal::ItemRecord;
    use crate::op::Origin;

    fn item(seq: u32, state: ItemState, cents: u64, reason: &str, sent: i64) -> GroupItem {
        GroupItem {
            batch_name: "b".into(),
            batch_closed: false,
            item: ItemRecord {
                batch: 1,
                seq,
                origin: Origin::line(u64::from(seq) + 2),
                op: Operation::Bonus {
                    worker: WorkerId::parse("A1").unwrap(),
                    assignment: AssignmentId::parse("X1").unwrap(),
                    amount: Cents(cents),
                    reason: reason.into(),
                },
                occurrence: 0,
                token: None,
                fee: None,
                state,
                attempts: 1,
                first_sent_ms: Some(sent),
                finished_ms: None,
                error: None,
                note: None,
            },
        }
    }

    fn listed(cents: u64, reason: &str) -> PaidBonus {
        PaidBonus {
            worker: "A1".into(),
            assignment: "X1".into(),
            amount: Some(Cents(cents)),
            reason: reason.into(),
        }
    }

    fn applied(v: &[(usize, Verdict)]) -> Vec<usize> {
        v.iter()
            .filter(|(_, v)| matches!(v, Verdict::Applied(_)))
            .map(|(i, _)| *i)
            .collect()
    }

    #[test]
    fn same_amount_siblings_are_told_apart_by_their_reason() {
        // Rounds 1, 2 and 3 of one assignment, same amount; only round 2 reached MTurk.
        let group = vec![
            item(0, ItemState::Unknown, 100, "round 1", 10),
            item(1, ItemState::Unknown, 100, "round 2", 11),
            item(2, ItemState::Unknown, 100, "round 3", 12),
        ];
        let v = decide_bonuses(&group, &[listed(100, "round 2")]);
        assert_eq!(v.len(), 3);
        assert_eq!(applied(&v), vec![1]);
    }

    #[test]
    fn paid_items_claim_their_bonus_before_unknown_ones() {
        // Two identical payments (a deliberate repeat): one known paid, one unknown, one listed.
        let group = vec![
            item(0, ItemState::Done, 100, "r", 10),
            item(1, ItemState::Unknown, 100, "r", 20),
        ];
        assert!(applied(&decide_bonuses(&group, &[listed(100, "r")])).is_empty());
        let both = decide_bonuses(&group, &[listed(100, "r"), listed(100, "r")]);
        assert_eq!(applied(&both), vec![1]);
    }

    #[test]
    fn a_bonus_of_the_same_amount_with_another_reason_is_not_ours() {
        let group = vec![item(0, ItemState::Unknown, 100, "accuracy bonus", 10)];
        let v = decide_bonuses(&group, &[listed(100, "paid by hand for something else")]);
        assert!(applied(&v).is_empty(), "{v:?}");
        // Another amount is never ours either.
        let v = decide_bonuses(&group, &[listed(101, "accuracy bonus")]);
        assert!(applied(&v).is_empty(), "{v:?}");
    }

    #[test]
    fn a_reason_mangled_in_whitespace_or_encoding_matches_loosely_and_says_so() {
        let group = vec![item(0, ItemState::Unknown, 100, "Merci, café  bonus!", 10)];
        for mangled in [
            "Merci, caf&#233; bonus!",
            "Merci, cafÃ© bonus!",
            "Merci,café bonus",
            "Merci, caf&#xE9; bonus!",
        ] {
            let v = decide_bonuses(&group, &[listed(100, mangled)]);
            match &v[0].1 {
                Verdict::Applied(note) => assert!(note.contains("differs only"), "{note}"),
                other => panic!("{mangled}: {other:?}"),
            }
        }
        // Exact matches are preferred: the loose candidate is left for the loose claimant.
        let group = vec![
            item(0, ItemState::Unknown, 100, "round 1", 10),
            item(1, ItemState::Unknown, 100, "round  1", 11),
        ];
        let v = decide_bonuses(&group, &[listed(100, "round  1"), listed(100, "round 1")]);
        assert!(matches!(&v[0].1, Verdict::Applied(n) if n.contains("bonus list for")));
        assert!(matches!(&v[1].1, Verdict::Applied(n) if n.contains("bonus list for")));
    }

    #[test]
    fn pending_and_failed_items_claim_nothing_and_get_no_verdict() {
        let group = vec![
            item(0, ItemState::Pending, 100, "r", 10),
            item(1, ItemState::Failed, 100, "r", 10),
            item(2, ItemState::Unknown, 100, "r", 10),
        ];
        let v = decide_bonuses(&group, &[listed(100, "r")]);
        assert_eq!(applied(&v), vec![2]);
        assert_eq!(v.len(), 1);
    }

    #[test]
    fn qualification_and_block_verdicts() {
        let w = WorkerId::parse("A1").unwrap();
        let q = crate::op::QualRef::Name("Panel".into());
        let score = Operation::Score {
            worker: w.clone(),
            qualification: q.clone(),
            value: 5,
            notify: false,
        };
        assert!(matches!(
            decide_qualification(&score, QualScore::Granted(5)),
            Verdict::Applied(_)
        ));
        assert!(matches!(
            decide_qualification(&score, QualScore::Granted(4)),
            Verdict::NotApplied(_)
        ));
        assert!(matches!(
            decide_qualification(&score, QualScore::Revoked),
            Verdict::NotApplied(_)
        ));
        let revoke = Operation::Revoke {
            worker: w.clone(),
            qualification: q,
            reason: None,
        };
        assert!(matches!(
            decide_qualification(&revoke, QualScore::Revoked),
            Verdict::Applied(_)
        ));
        assert!(matches!(
            decide_qualification(&revoke, QualScore::None),
            Verdict::Applied(_)
        ));
        assert!(matches!(
            decide_qualification(&revoke, QualScore::Granted(1)),
            Verdict::NotApplied(_)
        ));
        let block = Operation::Block {
            worker: w.clone(),
            reason: "r".into(),
        };
        let unblock = Operation::Unblock {
            worker: w,
            reason: None,
        };
        assert!(matches!(decide_block(&block, true), Verdict::Applied(_)));
        assert!(matches!(
            decide_block(&block, false),
            Verdict::NotApplied(_)
        ));
        assert!(matches!(decide_block(&unblock, false), Verdict::Applied(_)));
        assert!(matches!(
            decide_block(&unblock, true),
            Verdict::NotApplied(_)
        ));
    }
}
