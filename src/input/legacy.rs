//! payout 0.1's bonus-only entry points, kept as thin wrappers over [`scan`] until the command
//! line moves to the new API. They return bonuses only and refuse qualification files.

use std::path::Path;

use crate::ids::{AssignmentId, WorkerId};
use crate::money::Cents;
use crate::op::Operation;

use super::problems::{InputErrors, InputProblem};
use super::scan::{FileFacts, FileKind, InputOptions, Row, scan, scan_bytes};

/// One valid row of a bonuses file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BonusRow {
    /// 1-based line of the record in the file, as an editor counts it.
    pub line: u64,
    pub worker: WorkerId,
    pub assignment: AssignmentId,
    pub amount: Cents,
    pub reason: String,
}

/// Reads and validates a bonuses file.
pub fn read_bonuses(path: &Path, opts: &InputOptions) -> Result<Vec<BonusRow>, InputErrors> {
    let mut rows = Vec::new();
    let facts = scan(path, opts, &mut |row| rows.push(row))?;
    bonus_rows(facts, rows, &path.display().to_string())
}

/// Parses and validates the bytes of a bonuses file. `name` labels messages.
pub fn parse_bonuses(
    bytes: &[u8],
    name: &str,
    opts: &InputOptions,
) -> Result<Vec<BonusRow>, InputErrors> {
    let mut rows = Vec::new();
    let facts = scan_bytes(bytes, name, opts, &mut |row| rows.push(row))?;
    bonus_rows(facts, rows, name)
}

fn bonus_rows(facts: FileFacts, rows: Vec<Row>, name: &str) -> Result<Vec<BonusRow>, InputErrors> {
    if facts.kind != FileKind::Bonus {
        return Err(InputErrors {
            file: name.to_owned(),
            problems: vec![InputProblem {
                line: facts.header_line,
                column: None,
                message: format!(
                    "this is a {} ({} operations), and this version of payout run pays bonuses only",
                    facts.format.describe(),
                    facts.operations
                ),
            }],
            total: 1,
        });
    }
    Ok(rows
        .into_iter()
        .map(|row| match row.op {
            Operation::Bonus {
                worker,
                assignment,
                amount,
                reason,
            } => BonusRow {
                line: row.origin.line,
                worker,
                assignment,
                amount,
                reason,
            },
            other => unreachable!("a bonus file holds bonuses only, not {other:?}"),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wrappers_return_bonus_rows_and_refuse_qualification_files() {
        let rows = parse_bonuses(
            b"WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1.50,thanks\n",
            "b.csv",
            &InputOptions::default(),
        )
        .unwrap();
        assert_eq!(
            rows,
            [BonusRow {
                line: 2,
                worker: WorkerId::parse("A1").unwrap(),
                assignment: AssignmentId::parse("X1").unwrap(),
                amount: Cents(150),
                reason: "thanks".into()
            }]
        );
        let err = parse_bonuses(
            b"WorkerId,QualificationTypeId,IntegerValue\nA1,Panel,5\n",
            "q.csv",
            &InputOptions::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.problems[0].to_string(),
            "line 1: this is a qualification file (1 operations), and this version of payout run pays bonuses only"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.csv");
        std::fs::write(
            &path,
            "WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,r\n",
        )
        .unwrap();
        assert_eq!(
            read_bonuses(&path, &InputOptions::default()).unwrap().len(),
            1
        );
    }
}
