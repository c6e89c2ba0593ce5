//! The emulator's record of every bonus it paid, compact and indexed: IDs and reasons are
//! interned, the fee is derived from the amount, and payments are indexed by assignment and by
//! HIT, so listing one assignment's bonuses never scans the rest of a million-payment ledger.

use std::collections::HashMap;
use std::sync::Arc;

use super::state::Payment;
use crate::money::Cents;

/// An interned string.
type Sym = u32;

/// Each distinct string once: worker, assignment and HIT IDs and reasons repeat across many
/// payments.
#[derive(Default)]
struct Interner {
    ids: HashMap<Arc<str>, Sym>,
    texts: Vec<Arc<str>>,
}

impl Interner {
    fn intern(&mut self, text: &str) -> Sym {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = Sym::try_from(self.texts.len()).expect("fewer than 2^32 distinct strings");
        let text: Arc<str> = Arc::from(text);
        self.texts.push(Arc::clone(&text));
        self.ids.insert(text, id);
        id
    }

    fn get(&self, text: &str) -> Option<Sym> {
        self.ids.get(text).copied()
    }

    fn text(&self, id: Sym) -> &str {
        &self.texts[id as usize]
    }
}

/// One payment as stored: 48 bytes, plus its token's characters when it has one.
struct Entry {
    worker: Sym,
    assignment: Sym,
    hit: Sym,
    reason: Sym,
    amount: Cents,
    time_ms: u64,
    token: Option<Box<str>>,
}

/// What makes two payments "the same bonus" for double-payment detection.
#[derive(Hash, PartialEq, Eq)]
struct SameBonus {
    worker: Sym,
    assignment: Sym,
    reason: Sym,
    amount: Cents,
}

/// A payment by reference: what `record` takes, and what `view` lends for answers built under
/// the lock without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PaymentRef<'a> {
    pub worker_id: &'a str,
    pub assignment_id: &'a str,
    pub hit_id: &'a str,
    pub amount: Cents,
    pub reason: &'a str,
    pub token: Option<&'a str>,
    pub time_ms: u64,
}

/// Every bonus paid, in order.
#[derive(Default)]
pub(crate) struct Ledger {
    strings: Interner,
    entries: Vec<Entry>,
    by_assignment: HashMap<Sym, Vec<u32>>,
    by_hit: HashMap<Sym, Vec<u32>>,
    /// The first payment of each distinct bonus, and each later one that repeats it.
    first: HashMap<SameBonus, u32>,
    doubles: Vec<(u32, u32)>,
}

impl Ledger {
    pub fn record(&mut self, p: PaymentRef<'_>) {
        let index = u32::try_from(self.entries.len()).expect("fewer than 2^32 payments");
        let entry = Entry {
            worker: self.strings.intern(p.worker_id),
            assignment: self.strings.intern(p.assignment_id),
            hit: self.strings.intern(p.hit_id),
            reason: self.strings.intern(p.reason),
            amount: p.amount,
            time_ms: p.time_ms,
            token: p.token.map(Box::from),
        };
        let same = SameBonus {
            worker: entry.worker,
            assignment: entry.assignment,
            reason: entry.reason,
            amount: entry.amount,
        };
        match self.first.get(&same) {
            Some(&first) => self.doubles.push((first, index)),
            None => {
                self.first.insert(same, index);
            }
        }
        self.by_assignment
            .entry(entry.assignment)
            .or_default()
            .push(index);
        self.by_hit.entry(entry.hit).or_default().push(index);
        self.entries.push(entry);
    }

    /// The payment at `index` (from `for_assignment` / `for_hit`), borrowed.
    pub fn view(&self, index: u32) -> PaymentRef<'_> {
        let e = &self.entries[index as usize];
        PaymentRef {
            worker_id: self.strings.text(e.worker),
            assignment_id: self.strings.text(e.assignment),
            hit_id: self.strings.text(e.hit),
            amount: e.amount,
            reason: self.strings.text(e.reason),
            token: e.token.as_deref(),
            time_ms: e.time_ms,
        }
    }

    /// The payment at `index`, as the public type.
    pub fn payment(&self, index: u32) -> Payment {
        let p = self.view(index);
        Payment {
            worker_id: p.worker_id.to_owned(),
            assignment_id: p.assignment_id.to_owned(),
            hit_id: p.hit_id.to_owned(),
            amount: p.amount,
            fee: crate::platform::bonus_fee(p.amount),
            reason: p.reason.to_owned(),
            token: p.token.map(str::to_owned),
            time_ms: p.time_ms,
        }
    }

    /// Every payment, in order.
    pub fn all(&self) -> Vec<Payment> {
        (0..self.entries.len() as u32)
            .map(|i| self.payment(i))
            .collect()
    }

    /// Each payment that repeats an earlier one (same worker, assignment, amount and reason),
    /// paired with the first.
    pub fn double_payments(&self) -> Vec<(Payment, Payment)> {
        self.doubles
            .iter()
            .map(|&(a, b)| (self.payment(a), self.payment(b)))
            .collect()
    }

    /// Indices of the payments for one assignment, in order; empty if there are none.
    pub fn for_assignment(&self, assignment_id: &str) -> &[u32] {
        Self::indexed(&self.by_assignment, self.strings.get(assignment_id))
    }

    /// Indices of the payments for one HIT, in order; empty if there are none.
    pub fn for_hit(&self, hit_id: &str) -> &[u32] {
        Self::indexed(&self.by_hit, self.strings.get(hit_id))
    }

    fn indexed(index: &HashMap<Sym, Vec<u32>>, key: Option<Sym>) -> &[u32] {
        key.and_then(|k| index.get(&k)).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid<'a>(
        worker: &'a str,
        assignment: &'a str,
        cents: u64,
        reason: &'a str,
    ) -> PaymentRef<'a> {
        PaymentRef {
            worker_id: worker,
            assignment_id: assignment,
            hit_id: "H1",
            amount: Cents(cents),
            reason,
            token: None,
            time_ms: 5,
        }
    }

    #[test]
    fn payments_round_trip_and_are_indexed_by_assignment_and_hit() {
        let mut l = Ledger::default();
        l.record(PaymentRef {
            token: Some("t1"),
            ..paid("A1", "X1", 100, "r")
        });
        l.record(PaymentRef {
            time_ms: 6,
            ..paid("A2", "X2", 7, "other")
        });
        l.record(paid("A1", "X1", 3, "r"));
        let p = l.payment(0);
        assert_eq!(
            (
                p.worker_id.as_str(),
                p.assignment_id.as_str(),
                p.hit_id.as_str()
            ),
            ("A1", "X1", "H1")
        );
        assert_eq!((p.amount, p.fee), (Cents(100), Cents(20)));
        assert_eq!(p.token.as_deref(), Some("t1"));
        assert_eq!(l.payment(1).fee, Cents(1), "the minimum fee");
        assert_eq!(l.for_assignment("X1"), &[0, 2]);
        assert_eq!(l.for_assignment("X2"), &[1]);
        assert_eq!(l.for_hit("H1"), &[0, 1, 2]);
        assert!(
            l.for_assignment("H1").is_empty(),
            "a HIT is not an assignment"
        );
        assert!(l.for_assignment("NOPE").is_empty());
        let v = l.view(1);
        assert_eq!((v.worker_id, v.reason, v.time_ms), ("A2", "other", 6));
        assert_eq!(l.all().len(), 3);
    }

    #[test]
    fn double_payments_pair_the_first_with_each_repeat() {
        let mut l = Ledger::default();
        for amount in [5, 6, 5, 5] {
            l.record(paid("A1", "X", amount, "r"));
        }
        // Same amount, other reason or worker: not a repeat.
        l.record(paid("A1", "X", 5, "r2"));
        l.record(paid("A2", "X", 5, "r"));
        let d = l.double_payments();
        assert_eq!(d.len(), 2);
        assert!(
            d.iter()
                .all(|(a, b)| a.amount == Cents(5) && b.amount == Cents(5) && a.reason == "r")
        );
    }
}
