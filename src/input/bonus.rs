//! Bonus files: one `SendBonus` per row (worker, assignment, amount, reason).

use crate::ids::AssignmentId;
use crate::money::Cents;
use crate::op::Operation;

use super::columns::{Header, name_it, schema};
use super::row::{RowCtx, parse_worker, required_reason};
use super::scan::InputOptions;

/// Where each role's column sits in the header.
pub(crate) struct BonusLayout {
    worker: usize,
    assignment: usize,
    amount: usize,
    reason: Option<usize>,
}

impl BonusLayout {
    /// Finds the columns, or says (for the header line) what is missing and how to fix it.
    pub(crate) fn new(header: &Header, opts: &InputOptions) -> Result<BonusLayout, Vec<String>> {
        let mut problems = Vec::new();
        if opts.qualification.is_some() {
            problems.push(
                "--qualification applies to qualification files, and this one is read as a bonus file (--kind bonus)".to_string(),
            );
        }
        let mut find = |role: &str| {
            let spec = schema().column(role);
            let explicit = if role == "amount" {
                opts.amount_column.as_deref()
            } else {
                None
            };
            match header.one(spec, explicit) {
                Ok(Some(i)) => Some(i),
                Ok(None) => {
                    let message = match (role, explicit) {
                        (_, Some(name)) => format!(
                            "no column named {name:?} (from --amount-column); the header has: {}",
                            header.names.join(", ")
                        ),
                        ("reason", _) if opts.default_reason.is_some() => return None,
                        ("reason", _) => format!(
                            "no reason column; add a column named {} (shown to the worker) or give --reason TEXT",
                            spec.api_name
                        ),
                        ("amount", _) => format!(
                            "no amount column; {}, or name the column to pay from with --amount-column NAME",
                            name_it(spec)
                        ),
                        _ => format!("no {role} column; {}", name_it(spec)),
                    };
                    problems.push(message);
                    None
                }
                Err(message) => {
                    problems.push(message);
                    None
                }
            }
        };
        let worker = find("worker");
        let assignment = find("assignment");
        let amount = find("amount");
        let reason = find("reason");
        match (worker, assignment, amount) {
            (Some(worker), Some(assignment), Some(amount)) if problems.is_empty() => {
                Ok(BonusLayout {
                    worker,
                    assignment,
                    amount,
                    reason,
                })
            }
            _ => Err(problems),
        }
    }

    /// The columns this layout reads.
    pub(crate) fn used(&self) -> Vec<usize> {
        let mut v = vec![self.worker, self.assignment, self.amount];
        v.extend(self.reason);
        v
    }

    /// Validates one row; a valid row is one bonus.
    pub(crate) fn row(
        &self,
        row: &mut RowCtx<'_>,
        opts: &InputOptions,
        emit: &mut dyn FnMut(Option<usize>, Operation),
    ) {
        let worker = row.parse(self.worker, parse_worker);
        let assignment = row.parse(self.assignment, |s| {
            AssignmentId::parse(s).map_err(|e| format!("assignment ID {s:?} {e}"))
        });
        let amount = row.parse(self.amount, |s| {
            Cents::parse_bonus(s).map_err(|e| format!("amount {s:?} {e}"))
        });
        let default = opts.default_reason.as_deref();
        let reason = match self.reason {
            Some(idx) => row.parse(idx, |s| required_reason(s, default)),
            // No reason column: --reason gave the default (`new` made sure).
            None => match required_reason("", default) {
                Ok(r) => Some(r),
                Err(message) => {
                    row.row_problem(|| message);
                    None
                }
            },
        };
        if let (Some(worker), Some(assignment), Some(amount), Some(reason)) =
            (worker, assignment, amount, reason)
        {
            emit(
                None,
                Operation::Bonus {
                    worker,
                    assignment,
                    amount,
                    reason,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    //! The bonus reader's rules, as payout 0.1 had them, through the public API.

    use crate::input::scan::tests::{bonus_fields, problems_of};
    use crate::input::{InputOptions, parse_bytes, schema};
    use crate::money::Cents;

    fn problems(text: &str) -> Vec<String> {
        problems_of(text.as_bytes(), &InputOptions::default())
    }

    fn parse(text: &str) -> Vec<(u64, String, String, Cents, String)> {
        parse_with(text, &InputOptions::default())
    }

    fn parse_with(text: &str, opts: &InputOptions) -> Vec<(u64, String, String, Cents, String)> {
        parse_bytes(text.as_bytes(), "t.csv", opts)
            .unwrap()
            .iter()
            .map(bonus_fields)
            .collect()
    }

    #[test]
    fn reads_api_names_aliases_bom_crlf_quotes_and_whitespace() {
        let text = "\u{feff}Worker ID,assignment_id,Bonus, reason \r\n A1B2C3 , 3XYZ ,1.50,\"Thanks, great work\"\r\n";
        let rows = parse(text);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, 2);
        assert_eq!(rows[0].1, "A1B2C3");
        assert_eq!(rows[0].2, "3XYZ");
        assert_eq!(rows[0].3, Cents(150));
        assert_eq!(rows[0].4, "Thanks, great work");
    }

    #[test]
    fn reports_every_bad_field_with_line_and_column() {
        let text = "WorkerId,AssignmentId,BonusAmount,Reason\n\
                    A1,X1,$1.00,ok\n\
                    B2,X2,1.234,ok\n\
                    A3,x-3,1,\n";
        let p = problems(text);
        assert_eq!(p.len(), 5, "{p:#?}");
        assert!(
            p[0].starts_with("line 2, column BonusAmount: amount \"$1.00\" has a currency sign")
        );
        assert!(
            p[1].starts_with(
                "line 3, column WorkerId: worker ID \"B2\" must start with the letter A"
            )
        );
        assert!(
            p[2].starts_with(
                "line 3, column BonusAmount: amount \"1.234\" has more than 2 decimals"
            )
        );
        assert!(p[3].starts_with("line 4, column AssignmentId: assignment ID \"x-3\""));
        assert!(p[4].starts_with("line 4, column Reason: reason is empty"));
    }

    #[test]
    fn default_reason_fills_missing_column_and_empty_cells() {
        let opts = InputOptions {
            default_reason: Some("Thank you".into()),
            ..Default::default()
        };
        let rows = parse_with("worker_id,assignment_id,amount\nA1,X1,2\n", &opts);
        assert_eq!(rows[0].4, "Thank you");
        let rows = parse_with(
            "worker_id,assignment_id,amount,reason\nA1,X1,2,\nA1,X2,2,own\n",
            &opts,
        );
        assert_eq!(rows[0].4, "Thank you");
        assert_eq!(rows[1].4, "own");
    }

    #[test]
    fn amount_column_names_a_batch_results_column() {
        let text =
            "HITId,WorkerId,AssignmentId,Answer.score,MyBonus,Reason\nH1,A1,X1,7,0.70,score\n";
        let opts = InputOptions {
            amount_column: Some("MyBonus".into()),
            ..Default::default()
        };
        let rows = parse_with(text, &opts);
        assert_eq!(rows[0].3, Cents(70));
        let err = problems_of(
            text.as_bytes(),
            &InputOptions {
                amount_column: Some("Nope".into()),
                ..Default::default()
            },
        );
        assert!(err[0].contains("no column named \"Nope\""), "{err:?}");
    }

    #[test]
    fn duplicates_are_refused_unless_allowed() {
        let text =
            "WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,r\nA1,X1,1,r\nA1,X1,1,other\n";
        let p = problems(text);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("line 3: repeats line 2"));
        let opts = InputOptions {
            allow_duplicates: true,
            ..Default::default()
        };
        assert_eq!(parse_with(text, &opts).len(), 3);
    }

    #[test]
    fn whole_file_problems() {
        assert!(problems("")[0].contains("the file is empty"));
        assert!(problems("WorkerId,AssignmentId,BonusAmount,Reason\n")[0].contains("no rows"));
        let p = problems("WorkerId,BonusAmount,Reason\nA1,1,r\n");
        // The hint fits the missing column (payout 0.1 ended every one with "or use
        // --amount-column for the amount", issue 8).
        assert_eq!(
            p,
            vec![
                "line 1: no assignment column; name it AssignmentId (also accepted: assignment_id, assignmentId, Assignment ID, assignment)"
            ]
        );
        let p = problems("WorkerId,worker_id,AssignmentId,BonusAmount,Reason\nA1,A1,X,1,r\n");
        assert!(p[0].contains("more than one column could be the worker"));
    }

    #[test]
    fn each_missing_column_gets_its_own_hint() {
        let p = problems("AssignmentId,BonusAmount,Reason\nX1,1,r\n");
        assert_eq!(
            p,
            vec![
                "line 1: no worker column; name it WorkerId (also accepted: worker_id, workerId, Worker ID, worker, Answer.WorkerId)"
            ]
        );
        let p = problems("WorkerId,AssignmentId,Reason\nA1,X1,r\n");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("line 1: no amount column; name it BonusAmount")
                && p[0].ends_with("or name the column to pay from with --amount-column NAME"),
            "{p:?}"
        );
        let p = problems("WorkerId,AssignmentId,BonusAmount\nA1,X1,1\n");
        assert_eq!(
            p,
            vec![
                "line 1: no reason column; add a column named Reason (shown to the worker) or give --reason TEXT"
            ]
        );
    }

    #[test]
    fn ragged_rows_bad_utf8_and_long_reasons() {
        let p = problems("WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,a,b\n");
        assert!(p[0].starts_with("line 2: has 5 fields, but the header has 4"));
        let mut bytes = b"WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,caf".to_vec();
        bytes.extend_from_slice(&[0xE9, b'\n']);
        let p = problems_of(&bytes, &InputOptions::default());
        assert!(
            p[0].starts_with("line 2, column Reason: is not valid UTF-8"),
            "{p:?}"
        );
        let long = format!(
            "WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,{}\n",
            "x".repeat(5000)
        );
        assert!(
            problems(&long)[0].starts_with("line 2, column Reason: reason is 5000 characters long")
        );
    }

    #[test]
    fn too_many_and_too_few_fields_get_different_hints() {
        let p = problems("WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,Thanks, Ann\n");
        assert_eq!(
            p,
            vec![
                "line 2: has 5 fields, but the header has 4; a reason containing a comma must be in double quotes"
            ]
        );
        let p = problems("WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1\n");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("line 2: has 3 fields, but the header has 4;"),
            "{p:?}"
        );
        assert!(!p[0].contains("double quotes"), "{p:?}");
    }

    #[test]
    fn crlf_line_numbers_are_true_lines() {
        let p =
            problems("WorkerId,AssignmentId,BonusAmount,Reason\r\nA1,X1,1,r\r\nA2,X2,1.5.0,r\r\n");
        assert!(p[0].starts_with("line 3, column BonusAmount"), "{p:?}");
    }

    #[test]
    fn blank_trailing_rows_are_ignored() {
        let rows = parse("WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,r\n,,,\n\n");
        assert_eq!(rows.len(), 1);
    }

    #[test]
    fn line_numbers_count_quoted_newlines() {
        let text =
            "WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,\"two\nlines\"\nA2,X2,bad,r\n";
        let p = problems(text);
        assert!(p[0].starts_with("line 4, column BonusAmount"), "{p:?}");
    }

    #[test]
    fn qualification_is_refused_for_a_file_forced_to_be_bonuses() {
        let opts = InputOptions {
            kind: Some(crate::item::BatchKind::Bonus),
            qualification: Some("Panel".into()),
            ..Default::default()
        };
        let p = problems_of(
            b"WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,r\n",
            &opts,
        );
        assert!(p[0].contains("--qualification applies to qualification files"));
    }

    fn spec(role: &str) -> &'static crate::input::ColumnSpec {
        schema().column(role)
    }

    proptest::proptest! {
        /// The schema file is the contract: the validators accept exactly what its patterns do.
        #[test]
        fn validators_agree_with_the_schema_patterns(text in "[A0-9a.$,-]{0,8}") {
            use crate::ids::{AssignmentId, WorkerId};
            let worker = regex::Regex::new(spec("worker").pattern.as_deref().unwrap()).unwrap();
            let entity = regex::Regex::new(spec("assignment").pattern.as_deref().unwrap()).unwrap();
            let amount = regex::Regex::new(spec("amount").pattern.as_deref().unwrap()).unwrap();
            proptest::prop_assert_eq!(worker.is_match(&text), WorkerId::parse(&text).is_ok());
            proptest::prop_assert_eq!(entity.is_match(&text), AssignmentId::parse(&text).is_ok());
            let parsed = Cents::parse_bonus(&text);
            let is_zero = matches!(parsed, Err(crate::money::AmountError::Zero));
            proptest::prop_assert_eq!(amount.is_match(&text) && !is_zero, parsed.is_ok());
        }
    }
}
