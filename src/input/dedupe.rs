//! Repeats and conflicts across a whole file in bounded memory: 32 bytes per operation, no
//! owned strings.
//!
//! Each operation is kept as a 128-bit digest of what must be unique, its position, and (for
//! groups that allow one decision) what it does. Once the file is read the entries are sorted,
//! so that equal digests sit together with the first occurrence leading.
//!
//! Why 128 bits and no second look at the rows: equal operations always have equal digests, so
//! a digest collision can only ever *refuse* a valid file, never let a repeat through. With 128
//! bits of SHA-256 the chance that any two of a million distinct operations collide is about
//! n²/2¹²⁹ ≈ 10⁻²⁷ — far below a disk's undetected error rate — whereas confirming hits exactly
//! would need either the rows' text in memory (what this avoids) or a second read of a file
//! that may be a stream.

use sha2::{Digest, Sha256};

use crate::money::Cents;
use crate::op::{Operation, field};

use super::columns::Header;
use super::problems::Problems;

/// Columns are packed below the line number in [`Entry::pos`].
const COLUMN_BITS: u32 = 20;
/// The most columns a header may have.
pub(crate) const MAX_COLUMNS: usize = (1 << COLUMN_BITS) - 2;

/// One operation, as duplicate detection remembers it.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// For a group that allows many operations (bonuses of one assignment): the operation's
    /// identity (`Operation::same_as`). For the others: the group.
    key: [u64; 2],
    /// `line << COLUMN_BITS | column`, column = header index + 1 (0: the row as a whole).
    /// Sorting by it is file order.
    pos: u64,
    /// What the operation does within its group: [`What`] packed.
    what: u64,
}

/// What an operation does within its group: with the group, exactly `same_as`'s identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Bonus,
    Score(i32),
    Revoke,
    Block,
    Unblock,
}

impl What {
    fn of(op: &Operation) -> What {
        match op {
            Operation::Bonus { .. } => What::Bonus,
            Operation::Score { value, .. } => What::Score(*value),
            Operation::Revoke { .. } => What::Revoke,
            Operation::Block { .. } => What::Block,
            Operation::Unblock { .. } => What::Unblock,
        }
    }

    fn pack(self) -> u64 {
        let (kind, value) = match self {
            What::Bonus => (0u64, 0i32),
            What::Score(v) => (1, v),
            What::Revoke => (2, 0),
            What::Block => (3, 0),
            What::Unblock => (4, 0),
        };
        kind << 32 | u64::from(value as u32)
    }

    fn unpack(w: u64) -> What {
        match w >> 32 {
            0 => What::Bonus,
            1 => What::Score(w as u32 as i32),
            2 => What::Revoke,
            3 => What::Block,
            _ => What::Unblock,
        }
    }

    /// "score 80" / "a revoke" (qualification groups), "blocked" / "unblocked" (workers).
    fn describe(self) -> String {
        match self {
            What::Bonus => "a bonus".into(),
            What::Score(v) => format!("score {v}"),
            What::Revoke => "a revoke".into(),
            What::Block => "blocked".into(),
            What::Unblock => "unblocked".into(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Seen {
    entries: Vec<Entry>,
}

impl Seen {
    /// Remembers `op`, found at `line` (and in column `column`, for one-operation-per-cell
    /// files).
    pub(crate) fn add(&mut self, op: &Operation, line: u64, column: Option<usize>) {
        let col = column.map_or(0, |c| c as u64 + 1);
        debug_assert!(col < 1 << COLUMN_BITS, "the header has at most MAX_COLUMNS");
        self.entries.push(Entry {
            key: key(op),
            pos: line << COLUMN_BITS | col,
            what: What::of(op).pack(),
        });
    }

    /// Reports every operation that repeats or contradicts an earlier one: bonuses that repeat
    /// one (unless `allow_duplicates`), and any second operation in a group that allows one.
    pub(crate) fn finish(
        mut self,
        allow_duplicates: bool,
        header: &Header,
        problems: &mut Problems,
    ) {
        self.entries.sort_unstable_by_key(|e| (e.key, e.pos));
        let locate = |pos: u64| {
            let line = pos >> COLUMN_BITS;
            let col = (pos & ((1 << COLUMN_BITS) - 1)) as usize;
            (line, col.checked_sub(1))
        };
        let here = |e: &Entry| {
            let (line, col) = locate(e.pos);
            (line, col.map(|c| (c, header.names[c].as_str())))
        };
        let place = |pos: u64| match locate(pos) {
            (line, Some(c)) => format!("line {line}, column {}", header.names[c]),
            (line, None) => format!("line {line}"),
        };
        for run in self.entries.chunk_by(|a, b| a.key == b.key) {
            let first = run[0];
            let was = What::unpack(first.what);
            for e in &run[1..] {
                let (line, col) = here(e);
                let now = What::unpack(e.what);
                let subject = match now {
                    What::Block | What::Unblock => "the same worker is",
                    _ => "the same worker and qualification get",
                };
                if was == What::Bonus {
                    if !allow_duplicates {
                        problems.add(line, col, || {
                            format!(
                                "repeats {} (same worker, assignment, amount and reason); remove one, or pass --allow-duplicates to pay both",
                                place(first.pos)
                            )
                        });
                    }
                } else if now == was {
                    problems.add(line, col, || {
                        format!(
                            "repeats {} ({subject} {} in both); remove one",
                            place(first.pos),
                            was.describe()
                        )
                    });
                } else {
                    problems.add(line, col, || {
                        format!(
                            "conflicts with {}: {subject} {} there but {} here; keep one",
                            place(first.pos),
                            was.describe(),
                            now.describe()
                        )
                    });
                }
            }
        }
    }
}

/// The 128-bit digest [`Entry::key`] holds.
fn key(op: &Operation) -> [u64; 2] {
    let mut h = Sha256::new();
    let group = op.group();
    group.hash_into(&mut h);
    if group.allows_many() {
        // Several operations may share the group: the key is the whole identity.
        match op {
            Operation::Bonus { amount, reason, .. } => {
                let Cents(cents) = *amount;
                field(&mut h, "bonus");
                field(&mut h, &cents.to_string());
                field(&mut h, reason);
            }
            other => field(&mut h, &format!("{:?}", What::of(other))),
        }
    }
    let d = h.finalize();
    let word = |i: usize| u64::from_le_bytes(d[i..i + 8].try_into().expect("8 bytes"));
    [word(0), word(8)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AssignmentId, WorkerId};
    use crate::op::QualRef;

    fn op(kind: u8, worker: u8, target: u8, value: u8) -> Operation {
        let worker = WorkerId::parse(&format!("A{worker}")).unwrap();
        let qualification = if target.is_multiple_of(2) {
            QualRef::Name(format!("Q{target}"))
        } else {
            QualRef::Name(format!("Q{}", target - 1))
        };
        match kind % 5 {
            0 => Operation::Bonus {
                worker,
                assignment: AssignmentId::parse(&format!("X{target}")).unwrap(),
                amount: Cents(u64::from(value % 3) + 1),
                reason: format!("r{}", value % 2),
            },
            1 => Operation::Score {
                worker,
                qualification,
                value: i32::from(value % 3) - 1,
                notify: value.is_multiple_of(2),
            },
            2 => Operation::Revoke {
                worker,
                qualification,
                reason: value.is_multiple_of(2).then(|| "r".to_string()),
            },
            3 => Operation::Block {
                worker,
                reason: format!("r{}", value % 2),
            },
            _ => Operation::Unblock {
                worker,
                reason: None,
            },
        }
    }

    #[test]
    fn packing_round_trips() {
        for w in [
            What::Bonus,
            What::Score(i32::MIN),
            What::Score(-1),
            What::Score(0),
            What::Score(i32::MAX),
            What::Revoke,
            What::Block,
            What::Unblock,
        ] {
            assert_eq!(What::unpack(w.pack()), w);
        }
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }

    proptest::proptest! {
        /// Digest keys decide exactly what `Operation::same_as` and `Operation::group` do.
        #[test]
        fn keys_agree_with_same_as_and_groups(
            a in (0u8..5, 0u8..3, 0u8..4, 0u8..6),
            b in (0u8..5, 0u8..3, 0u8..4, 0u8..6),
        ) {
            let (a, b) = (op(a.0, a.1, a.2, a.3), op(b.0, b.1, b.2, b.3));
            let same_key = key(&a) == key(&b);
            // The journal finds the same operation through its group's index.
            if a.same_as(&b) {
                proptest::prop_assert!(a.group() == b.group());
            }
            if a.group().allows_many() || b.group().allows_many() {
                proptest::prop_assert_eq!(same_key, a.same_as(&b));
            } else {
                proptest::prop_assert_eq!(same_key, a.group() == b.group());
                let same_what = What::of(&a) == What::of(&b);
                proptest::prop_assert_eq!(same_key && same_what, a.same_as(&b));
            }
        }
    }
}
