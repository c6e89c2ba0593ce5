//! The plan: validated rows turned into payments with totals, fees and request tokens.
//!
//! A pure function of the rows and the target: the same file planned twice gives the same plan,
//! the same tokens and the same fingerprint, which is what makes re-running a command safe.

use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};

use crate::ids::{AssignmentId, WorkerId};
use crate::input::BonusRow;
use crate::money::Cents;

/// Where payments go. Part of every token, so a sandbox rehearsal never collides with production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Sandbox,
    Production,
    Emulator,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Sandbox => "sandbox",
            Target::Production => "production",
            Target::Emulator => "emulator",
        }
    }

    pub fn parse(s: &str) -> Option<Target> {
        match s {
            "sandbox" => Some(Target::Sandbox),
            "production" => Some(Target::Production),
            "emulator" => Some(Target::Emulator),
            _ => None,
        }
    }

    /// How the target appears in banners.
    pub fn banner(self) -> &'static str {
        match self {
            Target::Sandbox => "SANDBOX",
            Target::Production => "PRODUCTION",
            Target::Emulator => "EMULATOR",
        }
    }
}

/// The identity of a payment apart from its repeat number: what "the same bonus" means.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentKey {
    pub worker: WorkerId,
    pub assignment: AssignmentId,
    pub amount: Cents,
    pub reason: String,
}

/// One payment to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedBonus {
    /// Position in the plan (0-based), stable across runs of the same file.
    pub seq: u32,
    pub line: u64,
    pub key: PaymentKey,
    /// 0 for the first row with this key, 1 for a deliberate second one, and so on.
    pub occurrence: u32,
}

impl PlannedBonus {
    pub fn fee(&self) -> Cents {
        self.key.amount.bonus_fee()
    }
}

/// Money and counts of a set of payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub rows: u64,
    pub workers: u64,
    pub bonus: Cents,
    pub fee: Cents,
}

impl Totals {
    pub fn grand_total(&self) -> Cents {
        self.bonus + self.fee
    }

    pub fn of<'a>(keys: impl IntoIterator<Item = &'a PaymentKey>) -> Totals {
        let mut workers = HashSet::new();
        let mut t = Totals::default();
        for k in keys {
            t.rows += 1;
            t.bonus += k.amount;
            t.fee += k.amount.bonus_fee();
            workers.insert(k.worker.as_str());
        }
        t.workers = workers.len() as u64;
        t
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    pub items: Vec<PlannedBonus>,
    pub totals: Totals,
    /// Hex digest of the target and every row, in order: the batch's identity.
    pub fingerprint: String,
}

/// Builds the plan for `rows` paid on `target`. `variant` names options that change what a
/// batch means (for example `--allow-repeat`), so that they give a different batch.
pub fn plan(rows: &[BonusRow], target: Target, variant: &str) -> Plan {
    let mut occurrences: HashMap<&PaymentKeyRef<'_>, u32> = HashMap::new();
    let refs: Vec<PaymentKeyRef<'_>> = rows.iter().map(PaymentKeyRef::from).collect();
    let mut items = Vec::with_capacity(rows.len());
    let mut fp = Sha256::new();
    fp.update(b"payout-batch-v1\x1f");
    fp.update(target.as_str());
    fp.update(b"\x1f");
    fp.update(variant);
    for (i, (row, r)) in rows.iter().zip(&refs).enumerate() {
        let n = occurrences.entry(r).or_insert(0);
        let occurrence = *n;
        *n += 1;
        fp.update(b"\x1e");
        hash_fields(&mut fp, r, occurrence);
        items.push(PlannedBonus {
            seq: i as u32,
            line: row.line,
            key: PaymentKey {
                worker: row.worker.clone(),
                assignment: row.assignment.clone(),
                amount: row.amount,
                reason: row.reason.clone(),
            },
            occurrence,
        });
    }
    let totals = Totals::of(items.iter().map(|i| &i.key));
    Plan {
        target,
        items,
        totals,
        fingerprint: hex::encode(fp.finalize()),
    }
}

#[derive(PartialEq, Eq, Hash)]
struct PaymentKeyRef<'a> {
    worker: &'a str,
    assignment: &'a str,
    cents: u64,
    reason: &'a str,
}

impl<'a> From<&'a BonusRow> for PaymentKeyRef<'a> {
    fn from(r: &'a BonusRow) -> Self {
        PaymentKeyRef {
            worker: r.worker.as_str(),
            assignment: r.assignment.as_str(),
            cents: r.amount.0,
            reason: &r.reason,
        }
    }
}

fn hash_fields(h: &mut Sha256, k: &PaymentKeyRef<'_>, occurrence: u32) {
    // Unit separators keep field boundaries unambiguous ("A1"+"2X" ≠ "A12"+"X").
    h.update(k.worker);
    h.update(b"\x1f");
    h.update(k.assignment);
    h.update(b"\x1f");
    h.update(k.cents.to_string());
    h.update(b"\x1f");
    h.update(k.reason);
    h.update(b"\x1f");
    h.update(occurrence.to_string());
}

/// The `UniqueRequestToken` of a payment: derived from its content only, so that MTurk itself
/// refuses a repeat for 24 hours even when the journal is lost or the batch is run elsewhere.
/// 8 + 48 = 56 characters, within MTurk's 64.
pub fn request_token(target: Target, key: &PaymentKey, occurrence: u32) -> String {
    let mut h = Sha256::new();
    h.update(b"payout-token-v1\x1f");
    h.update(target.as_str());
    h.update(b"\x1f");
    hash_fields(
        &mut h,
        &PaymentKeyRef {
            worker: key.worker.as_str(),
            assignment: key.assignment.as_str(),
            cents: key.amount.0,
            reason: &key.reason,
        },
        occurrence,
    );
    let digest = hex::encode(h.finalize());
    format!("payout1-{}", &digest[..48])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(line: u64, w: &str, a: &str, cents: u64, reason: &str) -> BonusRow {
        BonusRow {
            line,
            worker: WorkerId::parse(w).unwrap(),
            assignment: AssignmentId::parse(a).unwrap(),
            amount: Cents(cents),
            reason: reason.into(),
        }
    }

    #[test]
    fn totals_fees_and_occurrences() {
        let rows = vec![
            row(2, "A1", "X1", 100, "r"),
            row(3, "A1", "X1", 100, "r"),
            row(4, "A2", "X2", 7, "r"),
        ];
        let p = plan(&rows, Target::Sandbox, "");
        assert_eq!(p.totals.rows, 3);
        assert_eq!(p.totals.workers, 2);
        assert_eq!(p.totals.bonus, Cents(207));
        assert_eq!(p.totals.fee, Cents(20 + 20 + 1));
        assert_eq!(p.totals.grand_total(), Cents(248));
        let occ: Vec<u32> = p.items.iter().map(|i| i.occurrence).collect();
        assert_eq!(occ, vec![0, 1, 0]);
    }

    #[test]
    fn tokens_are_stable_distinct_and_short() {
        let p = plan(&[row(2, "A1", "X1", 100, "r")], Target::Sandbox, "");
        let k = &p.items[0].key;
        let t = request_token(Target::Sandbox, k, 0);
        assert_eq!(t, request_token(Target::Sandbox, k, 0));
        assert!(t.len() <= 64);
        assert_ne!(t, request_token(Target::Production, k, 0));
        assert_ne!(t, request_token(Target::Sandbox, k, 1));
        let mut k2 = k.clone();
        k2.amount = Cents(101);
        assert_ne!(t, request_token(Target::Sandbox, &k2, 0));
    }

    #[test]
    fn fingerprint_depends_on_target_rows_and_variant() {
        let rows = vec![row(2, "A1", "X1", 100, "r")];
        let a = plan(&rows, Target::Sandbox, "").fingerprint;
        assert_eq!(a, plan(&rows, Target::Sandbox, "").fingerprint);
        assert_ne!(a, plan(&rows, Target::Emulator, "").fingerprint);
        assert_ne!(a, plan(&rows, Target::Sandbox, "repeat").fingerprint);
        assert_ne!(
            a,
            plan(&[row(2, "A1", "X1", 100, "r2")], Target::Sandbox, "").fingerprint
        );
    }

    proptest! {
        #[test]
        fn plan_totals_equal_the_sum_of_rows(amounts in proptest::collection::vec(1u64..1_000_000, 1..50)) {
            let rows: Vec<BonusRow> = amounts.iter().enumerate()
                .map(|(i, c)| row(i as u64 + 2, &format!("A{}", i % 7), &format!("X{i}"), *c, "r"))
                .collect();
            let p = plan(&rows, Target::Sandbox, "");
            prop_assert_eq!(p.totals.bonus.0, amounts.iter().sum::<u64>());
            prop_assert_eq!(p.totals.fee.0, amounts.iter().map(|c| Cents(*c).bonus_fee().0).sum::<u64>());
            prop_assert_eq!(p.totals.rows as usize, amounts.len());
        }
    }
}
