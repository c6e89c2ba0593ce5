//! API-style qualification files: one row per worker and qualification, named after
//! `AssociateQualificationWithWorker` / `DisassociateQualificationFromWorker` (`WorkerId`,
//! `QualificationTypeId`, `IntegerValue`, optional `Action` and `Reason`).

use crate::op::{Operation, QualRef};

use super::columns::{Header, name_it, qualification_schema};
use super::row::{RowCtx, optional_reason, parse_worker};
use super::scan::InputOptions;

/// Where the qualification of a row comes from.
enum Qual {
    Column(usize),
    /// `--qualification ID|NAME`, for every row.
    Fixed(QualRef),
}

pub(crate) struct ApiLayout {
    worker: usize,
    qualification: Qual,
    /// No score column is needed by a file that only revokes (an action column says so).
    value: Option<usize>,
    action: Option<usize>,
    reason: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Grant,
    Revoke,
}

impl ApiLayout {
    pub(crate) fn new(header: &Header, opts: &InputOptions) -> Result<ApiLayout, Vec<String>> {
        let schema = qualification_schema();
        let mut problems = Vec::new();
        if opts.amount_column.is_some() {
            problems.push(
                "--amount-column applies to bonus files, and this one is a qualification file"
                    .to_string(),
            );
        }
        // Ok(None): no such column; Err: several (reported already).
        let mut find = |role: &str| {
            header
                .one(schema.column(role), None)
                .map_err(|message| problems.push(message))
        };
        let worker = find("worker");
        let qual_column = find("qualification");
        let value = find("value");
        let action = find("action");
        let reason = find("reason");
        let missing = |role: &str, tail: &str| {
            format!("no {role} column; {}{tail}", name_it(schema.column(role)))
        };
        if let Ok(None) = worker {
            problems.push(missing("worker", ""));
        }
        let qualification = match (qual_column, &opts.qualification) {
            (Err(()), _) => None,
            (Ok(Some(i)), Some(_)) => {
                problems.push(format!(
                    "--qualification names one qualification for the whole file, but the file has a qualification column ({}); use one or the other",
                    header.names[i]
                ));
                None
            }
            (Ok(Some(i)), None) => Some(Qual::Column(i)),
            (Ok(None), Some(q)) if q.trim().is_empty() => {
                problems
                    .push("--qualification is empty; give a qualification type ID or name".into());
                None
            }
            (Ok(None), Some(q)) => Some(Qual::Fixed(QualRef::from_text(q))),
            (Ok(None), None) => {
                problems.push(missing(
                    "qualification",
                    " with a qualification type ID or name on each row, or give --qualification ID|NAME for the whole file",
                ));
                None
            }
        };
        // A file with an action column may have no score column: each of its rows must then
        // be a revoke (a grant without a score is refused at its row). A header refused for
        // another reason is told about the score column too: its grants will need one.
        if value == Ok(None) && (action == Ok(None) || !problems.is_empty()) {
            problems.push(format!(
                "no score column; {}; an empty cell grants score 1, as in the API",
                name_it(schema.column("value"))
            ));
        }
        match (worker, qualification, value, action, reason) {
            (Ok(Some(worker)), Some(qualification), Ok(value), Ok(action), Ok(reason))
                if problems.is_empty() =>
            {
                Ok(ApiLayout {
                    worker,
                    qualification,
                    value,
                    action,
                    reason,
                })
            }
            _ => Err(problems),
        }
    }

    pub(crate) fn used(&self) -> Vec<usize> {
        let mut v = vec![self.worker];
        v.extend(self.value);
        if let Qual::Column(i) = self.qualification {
            v.push(i);
        }
        v.extend(self.action);
        v.extend(self.reason);
        v
    }

    /// Validates one row; a valid row is one grant (score) or one revoke.
    pub(crate) fn row(
        &self,
        row: &mut RowCtx<'_>,
        opts: &InputOptions,
        emit: &mut dyn FnMut(Option<usize>, Operation),
    ) {
        let worker = row.parse(self.worker, parse_worker);
        let qualification = match &self.qualification {
            Qual::Fixed(q) => Some(q.clone()),
            Qual::Column(i) => row.parse(*i, |s| {
                if s.is_empty() {
                    Err("qualification is empty; write a qualification type ID or name (or give --qualification for the whole file)".into())
                } else {
                    Ok(QualRef::from_text(s))
                }
            }),
        };
        let action = match self.action {
            None => Some(Action::Grant),
            Some(i) => row.parse(i, parse_action),
        };
        let value = match (action, self.value) {
            (Some(Action::Grant), Some(col)) => row.parse(col, parse_integer_value),
            (Some(Action::Grant), None) => {
                row.row_problem(|| {
                    "a grant needs a score, and the file has no score column (IntegerValue); add one, or write revoke as the action".to_string()
                });
                None
            }
            (Some(Action::Revoke), None) => Some(0),
            (Some(Action::Revoke), Some(col)) => row
                .parse(col, |s| {
                    if s.is_empty() {
                        Ok(())
                    } else {
                        Err(format!(
                            "a revoke takes no score, but this row has {s:?}; leave it empty, or write grant as the action"
                        ))
                    }
                })
                .map(|()| 0),
            (None, _) => None,
        };
        let default = opts.default_reason.as_deref();
        let reason = match (action, self.reason) {
            (Some(Action::Revoke), Some(i)) => row.parse(i, |s| optional_reason(s, default)),
            (Some(Action::Revoke), None) => optional_reason("", default)
                .map_err(|message| row.row_problem(|| message))
                .ok(),
            (Some(Action::Grant), Some(i)) => row.parse(i, |s| {
                if s.is_empty() {
                    Ok(None)
                } else {
                    Err("a reason goes only with a revoke (MTurk sends none with a grant); leave it empty".into())
                }
            }),
            (Some(Action::Grant), None) => Some(None),
            (None, _) => None,
        };
        let (Some(worker), Some(qualification), Some(action), Some(value), Some(reason)) =
            (worker, qualification, action, value, reason)
        else {
            return;
        };
        let op = match action {
            Action::Grant => Operation::Score {
                worker,
                qualification,
                value,
                notify: opts.notify,
            },
            Action::Revoke => Operation::Revoke {
                worker,
                qualification,
                reason,
            },
        };
        emit(None, op);
    }
}

/// `grant` (also an empty cell) or `revoke`, in any case. Anything else is refused: a
/// misspelt revoke read as a grant would do the opposite of what was asked.
fn parse_action(text: &str) -> Result<Action, String> {
    if text.is_empty() || text.eq_ignore_ascii_case("grant") {
        Ok(Action::Grant)
    } else if text.eq_ignore_ascii_case("revoke") {
        Ok(Action::Revoke)
    } else {
        Err(format!(
            "action {text:?} is neither grant nor revoke (an empty cell means grant)"
        ))
    }
}

/// A score as `IntegerValue` takes it: any 32-bit integer, `^[+-]?[0-9]+$`; empty means 1.
pub(crate) fn parse_integer_value(text: &str) -> Result<i32, String> {
    if text.is_empty() {
        return Ok(1);
    }
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "score {text:?} is not a whole number; write an integer such as 1 or 85"
        ));
    }
    text.parse::<i32>().map_err(|_| {
        format!(
            "score {text:?} is outside the range MTurk accepts ({} to {})",
            i32::MIN,
            i32::MAX
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::WorkerId;
    use crate::input::scan::tests::problems_of;
    use crate::input::{InputOptions, parse_bytes, qualification_schema};
    use crate::op::Origin;

    const HEADER: &str = "WorkerId,QualificationTypeId,IntegerValue,Action,Reason\n";
    const QID: &str = "3TDQ1F4SL7Q8R2Z5X1V0EXAMPLE1";

    fn ops(text: &str, opts: &InputOptions) -> Vec<(Origin, Operation)> {
        parse_bytes(text.as_bytes(), "q.csv", opts)
            .unwrap()
            .into_iter()
            .map(|r| (r.origin, r.op))
            .collect()
    }

    fn problems(text: &str) -> Vec<String> {
        problems_of(text.as_bytes(), &InputOptions::default())
    }

    fn w(s: &str) -> WorkerId {
        WorkerId::parse(s).unwrap()
    }

    #[test]
    fn grants_and_revokes_by_id_or_name() {
        let text = format!(
            "{HEADER}A1,{QID},80,,\nA2,Past participants,,grant,\nA3,{QID},,REVOKE,Left the panel\nA4,{QID},,Revoke,\n"
        );
        let got = ops(&text, &InputOptions::default());
        assert_eq!(
            got,
            vec![
                (
                    Origin::line(2),
                    Operation::Score {
                        worker: w("A1"),
                        qualification: QualRef::from_text(QID),
                        value: 80,
                        notify: false
                    }
                ),
                (
                    Origin::line(3),
                    Operation::Score {
                        worker: w("A2"),
                        qualification: QualRef::Name("Past participants".into()),
                        value: 1,
                        notify: false
                    }
                ),
                (
                    Origin::line(4),
                    Operation::Revoke {
                        worker: w("A3"),
                        qualification: QualRef::from_text(QID),
                        reason: Some("Left the panel".into())
                    }
                ),
                (
                    Origin::line(5),
                    Operation::Revoke {
                        worker: w("A4"),
                        qualification: QualRef::from_text(QID),
                        reason: None
                    }
                ),
            ]
        );
        assert!(matches!(got[0].1.qualification(), Some(QualRef::Id(_))));
    }

    #[test]
    fn aliases_notify_and_a_default_revoke_reason() {
        let opts = InputOptions {
            notify: true,
            default_reason: Some("Study closed".into()),
            ..Default::default()
        };
        let got = ops(
            "worker_id,qualification,score,action\nA1,Panel,-5,grant\nA2,Panel,,revoke\n",
            &opts,
        );
        assert_eq!(
            got[0].1,
            Operation::Score {
                worker: w("A1"),
                qualification: QualRef::Name("Panel".into()),
                value: -5,
                notify: true
            }
        );
        assert_eq!(
            got[1].1,
            Operation::Revoke {
                worker: w("A2"),
                qualification: QualRef::Name("Panel".into()),
                reason: Some("Study closed".into())
            }
        );
        assert!(got[0].1.notifies());
        let long = InputOptions {
            default_reason: Some("x".repeat(5000)),
            ..Default::default()
        };
        let p = problems_of(
            b"WorkerId,QualificationTypeId,IntegerValue,Action\nA1,Panel,,revoke\n",
            &long,
        );
        assert_eq!(
            p,
            ["line 2: reason is 5000 characters long; MTurk accepts at most 4096"]
        );
    }

    #[test]
    fn one_qualification_for_the_whole_file() {
        let opts = InputOptions {
            qualification: Some(QID.into()),
            ..Default::default()
        };
        let got = ops("WorkerId,IntegerValue\nA1,5\nA2,\n", &opts);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].1.qualification(), Some(&QualRef::from_text(QID)));
        let p = problems_of(format!("{HEADER}A1,{QID},1,,\n").as_bytes(), &opts);
        assert!(
            p[0].starts_with("line 1: --qualification names one qualification for the whole file, but the file has a qualification column (QualificationTypeId)"),
            "{p:?}"
        );
    }

    #[test]
    fn every_bad_cell_is_reported_with_line_and_column() {
        let text = format!(
            "{HEADER}a1b2,{QID},1,,\nA2,,1,,\nA3,{QID},1.5,,\nA4,{QID},99999999999,,\nA5,{QID},,Revok,\nA6,{QID},5,revoke,\nA7,{QID},5,grant,because\n"
        );
        let p = problems(&text);
        assert_eq!(
            p,
            vec![
                "line 2, column WorkerId: worker ID \"a1b2\" is in lower case; MTurk worker IDs are capital letters and digits (A1B2)",
                "line 3, column QualificationTypeId: qualification is empty; write a qualification type ID or name (or give --qualification for the whole file)",
                "line 4, column IntegerValue: score \"1.5\" is not a whole number; write an integer such as 1 or 85",
                "line 5, column IntegerValue: score \"99999999999\" is outside the range MTurk accepts (-2147483648 to 2147483647)",
                "line 6, column Action: action \"Revok\" is neither grant nor revoke (an empty cell means grant)",
                "line 7, column IntegerValue: a revoke takes no score, but this row has \"5\"; leave it empty, or write grant as the action",
                "line 8, column Reason: a reason goes only with a revoke (MTurk sends none with a grant); leave it empty",
            ]
        );
    }

    #[test]
    fn a_worker_gets_one_change_per_qualification() {
        let text = format!(
            "{HEADER}A1,{QID},80,,\nA1,{QID},70,,\nA1,{QID},80,,\nA1,{QID},,revoke,\nA2,{QID},,revoke,\nA2,{QID},,revoke,\nA1,Other,80,,\n"
        );
        let p = problems(&text);
        assert_eq!(
            p,
            vec![
                "line 3: conflicts with line 2: the same worker and qualification get score 80 there but score 70 here; keep one",
                "line 4: repeats line 2 (the same worker and qualification get score 80 in both); remove one",
                "line 5: conflicts with line 2: the same worker and qualification get score 80 there but a revoke here; keep one",
                "line 7: repeats line 6 (the same worker and qualification get a revoke in both); remove one",
            ]
        );
        // --allow-duplicates is for bonuses: one decision per worker and qualification still.
        let opts = InputOptions {
            allow_duplicates: true,
            ..Default::default()
        };
        assert_eq!(problems_of(text.as_bytes(), &opts).len(), 4);
    }

    #[test]
    fn missing_columns_say_how_to_fix_them() {
        let p = problems("WorkerId,Action\nA1,grant\n");
        assert_eq!(
            p,
            vec![
                "line 1: no qualification column; name it QualificationTypeId (also accepted: qualification_type_id, qualificationTypeId, Qualification Type ID, qualification_id, Qualification ID, qualification, qualification_name) with a qualification type ID or name on each row, or give --qualification ID|NAME for the whole file",
                "line 1: no score column; name it IntegerValue (also accepted: integer_value, integerValue, Integer Value, score, value); an empty cell grants score 1, as in the API",
            ]
        );
        let p = problems("QualificationTypeId,IntegerValue\nQ,1\n");
        assert!(
            p[0].starts_with("line 1: no worker column; name it WorkerId"),
            "{p:?}"
        );
    }

    #[test]
    fn bonus_options_are_refused() {
        let p = problems_of(
            format!("{HEADER}A1,{QID},1,,\n").as_bytes(),
            &InputOptions {
                amount_column: Some("IntegerValue".into()),
                kind: Some(crate::item::BatchKind::Qualification),
                ..Default::default()
            },
        );
        assert_eq!(
            p,
            [
                "line 1: --amount-column applies to bonus files, and this one is a qualification file"
            ]
        );
    }

    #[test]
    fn scores_are_any_32_bit_integer_and_empty_means_one() {
        assert_eq!(parse_integer_value(""), Ok(1));
        assert_eq!(parse_integer_value("0"), Ok(0));
        assert_eq!(parse_integer_value("+7"), Ok(7));
        assert_eq!(parse_integer_value("-2147483648"), Ok(i32::MIN));
        assert_eq!(parse_integer_value("2147483647"), Ok(i32::MAX));
        assert!(parse_integer_value("2147483648").is_err());
        assert!(parse_integer_value("1e3").is_err());
        assert!(parse_integer_value("-").is_err());
        assert!(parse_integer_value("٣").is_err());
    }

    #[test]
    fn actions_are_two_words_in_any_case() {
        assert_eq!(parse_action(""), Ok(Action::Grant));
        assert_eq!(parse_action("GRANT"), Ok(Action::Grant));
        assert_eq!(parse_action("Revoke"), Ok(Action::Revoke));
        assert!(parse_action("Revok").is_err());
        assert!(parse_action("remove").is_err());
    }

    fn spec(role: &str) -> &'static crate::input::ColumnSpec {
        qualification_schema().column(role)
    }

    proptest::proptest! {
        /// The qualification contract: validators accept exactly what its patterns (and
        /// ranges) do.
        #[test]
        fn validators_agree_with_the_qualification_schema(text in "[+A0-9a-]{0,12}") {
            use crate::ids::QualificationTypeId;
            let worker = regex::Regex::new(spec("worker").pattern.as_deref().unwrap()).unwrap();
            let qual = regex::Regex::new(spec("qualification").pattern.as_deref().unwrap()).unwrap();
            let value = regex::Regex::new(spec("value").pattern.as_deref().unwrap()).unwrap();
            proptest::prop_assert_eq!(worker.is_match(&text), WorkerId::parse(&text).is_ok());
            proptest::prop_assert_eq!(qual.is_match(&text), QualificationTypeId::parse(&text).is_ok());
            let (min, max) = (spec("value").minimum.unwrap(), spec("value").maximum.unwrap());
            let in_range = text.parse::<i64>().is_ok_and(|v| (min..=max).contains(&v));
            let want = text.is_empty() || (value.is_match(&text) && in_range);
            proptest::prop_assert_eq!(want, parse_integer_value(&text).is_ok());
        }

        #[test]
        fn actions_agree_with_the_schema(text in "(grant|revoke|Grant|REVOKE|revok|)") {
            let known = spec("action").values.iter().any(|v| v.eq_ignore_ascii_case(&text));
            proptest::prop_assert_eq!(known || text.is_empty(), parse_action(&text).is_ok());
        }
    }
}
