//! The requester website's worker CSV (Manage → Workers → Download CSV), as a researcher edits
//! it: one operation per non-empty `UPDATE-<qualification name>` or `UPDATE-BlockStatus` cell.
//!
//! Telling columns apart (documented in the README): the worker ID column, `UPDATE-…` columns,
//! and the website's own read-only columns (`CURRENT-…`, `CURRENT BlockStatus`, approval rates
//! and other statistics: headers starting with the word `Lifetime` or with `Last <n> Days`, or
//! naming an approval rate) are known. Every other column is refused: a column payout ignored silently would be
//! changes the researcher asked for and never got. One that starts like `UPDATE` but is not
//! exactly `UPDATE-<name>` (`UPDATE_Foo`, `Update Foo`, `UDPATE-Foo`, `UPDATE-`) is refused as
//! an unknown column prefix.

use crate::ids::WorkerId;
use crate::op::{Operation, QualRef};

use super::columns::{Header, header_key, qualification_schema};
use super::row::{RowCtx, parse_worker};
use super::scan::InputOptions;

/// The prefix of a column that changes a qualification (the website writes it in capitals;
/// any case is read).
const UPDATE_PREFIX: &str = "UPDATE-";
/// The qualification name that means the block column instead (`UPDATE-BlockStatus`).
const BLOCK_STATUS: &str = "BlockStatus";
/// Highest score the website accepts.
const MAX_SCORE: u32 = 100;

/// What a column of the website's file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WebsiteColumn {
    /// `UPDATE-<name>`: scores and revokes for the qualification named `name`.
    Update(String),
    /// `UPDATE-BlockStatus`: blocks and unblocks.
    Block,
    /// `CURRENT-<name>`, `CURRENT BlockStatus`: the website's record of today's values.
    Current,
    /// `UPDATE-` without a name.
    UnnamedUpdate,
    /// Starts like UPDATE but is not `UPDATE-<name>`.
    MistypedUpdate,
    Other,
}

/// Classifies a header name of the website's file.
pub(crate) fn classify(name: &str) -> WebsiteColumn {
    let name = name.trim();
    let head = name.get(..UPDATE_PREFIX.len());
    if head.is_some_and(|h| h.eq_ignore_ascii_case(UPDATE_PREFIX)) {
        let rest = name[UPDATE_PREFIX.len()..].trim();
        return if rest.is_empty() {
            WebsiteColumn::UnnamedUpdate
        } else if rest.eq_ignore_ascii_case(BLOCK_STATUS) {
            WebsiteColumn::Block
        } else {
            WebsiteColumn::Update(rest.to_owned())
        };
    }
    // The website spells its read-only twin "CURRENT BlockStatus"; read "UPDATE BlockStatus"
    // the same way, since it cannot mean anything else.
    if name.eq_ignore_ascii_case("UPDATE BlockStatus") {
        return WebsiteColumn::Block;
    }
    if is_current(name) {
        return WebsiteColumn::Current;
    }
    if looks_like_update(name) {
        return WebsiteColumn::MistypedUpdate;
    }
    WebsiteColumn::Other
}

/// The website's read-only columns, as the README promises them: `CURRENT-<name>` (any case,
/// `_` for the hyphen too) and `CURRENT BlockStatus`. Another column that merely starts with
/// the word ("Current score") is unknown, and refused like any other: it may hold changes.
fn is_current(name: &str) -> bool {
    const WORD: &str = "current";
    if !word_prefix(name, WORD) {
        return false;
    }
    let rest = &name[WORD.len()..];
    if let Some(qual) = rest.strip_prefix(['-', '_']) {
        return !qual.trim().is_empty();
    }
    rest.starts_with(char::is_whitespace) && rest.trim().eq_ignore_ascii_case(BLOCK_STATUS)
}

/// Whether `name` starts with the word `word` (any case), followed by a non-letter or nothing:
/// `CURRENT-Panel` and `CURRENT BlockStatus`, not `Currently`.
fn word_prefix(name: &str, word: &str) -> bool {
    name.get(..word.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(word))
        && !name[word.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic())
}

/// Whether the leading letters of `name` are "update" or one slip away from it (a letter
/// missing, added, changed, or two swapped): `UPDATE_Foo`, `Update Foo`, `UDPATE-Foo`,
/// `UpdateFoo`, `Updated scores`.
fn looks_like_update(name: &str) -> bool {
    let letters: Vec<u8> = name
        .bytes()
        .take_while(u8::is_ascii_alphabetic)
        .map(|b| b.to_ascii_lowercase())
        .collect();
    (5..=7)
        .filter(|&n| n <= letters.len())
        .any(|n| one_slip(&letters[..n], b"update"))
}

/// Whether `a` becomes `b` by one slip: a letter missing, added or changed, or two
/// neighbours swapped (an optimal string alignment distance of at most 1).
fn one_slip(a: &[u8], b: &[u8]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    match long.len() - short.len() {
        0 => {
            let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            match diff.as_slice() {
                [] | [_] => true,
                &[i, j] => j == i + 1 && a[i] == b[j] && a[j] == b[i],
                _ => false,
            }
        }
        1 => {
            let same = short.iter().zip(long).take_while(|(x, y)| x == y).count();
            short[same..] == long[same + 1..]
        }
        _ => false,
    }
}

/// The website's statistics columns ("Lifetime Approval Rate", "Last 30 Days Approval Rate",
/// …): read-only, like `CURRENT-…`.
fn is_statistic(name: &str) -> bool {
    let key = header_key(name);
    let last_days = key
        .strip_prefix("last")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()) && rest.contains("day"));
    key.contains("approvalrate") || word_prefix(name, "lifetime") || last_days
}

pub(crate) struct WebsiteLayout {
    worker: usize,
    /// (column, qualification) for every `UPDATE-<name>` column.
    updates: Vec<(usize, QualRef)>,
    block: Option<usize>,
    /// Columns without a name: they must hold nothing.
    unnamed: Vec<usize>,
}

impl WebsiteLayout {
    /// Sorts the columns out. Problems come with the column they are about, if any. A layout
    /// comes back even with problems when the rows can still be checked (the worker column
    /// and some UPDATE column are there), so that a mistyped column does not hide the rows'
    /// problems.
    pub(crate) fn new(
        header: &Header,
        opts: &InputOptions,
    ) -> (Option<WebsiteLayout>, Vec<(Option<usize>, String)>) {
        let mut problems = Vec::new();
        if opts.qualification.is_some() {
            problems.push((None, "--qualification names one qualification for a whole file, but this is a worker file from the requester website, whose UPDATE- columns name their qualifications; leave --qualification out".to_string()));
        }
        if opts.amount_column.is_some() {
            problems.push((
                None,
                "--amount-column applies to bonus files, and this one is a worker file from the requester website".to_string(),
            ));
        }
        let worker_spec = qualification_schema().column("worker");
        let worker = match header.one(worker_spec, None) {
            Ok(Some(i)) => Some(i),
            Ok(None) => {
                problems.push((
                    None,
                    format!(
                        "no worker column; the requester website names it {}",
                        website_spec().worker_column
                    ),
                ));
                None
            }
            Err(message) => {
                problems.push((None, message));
                None
            }
        };
        let mut updates: Vec<(usize, QualRef)> = Vec::new();
        let mut block = None;
        let mut unnamed = Vec::new();
        for (i, name) in header.names.iter().enumerate() {
            if Some(i) == worker {
                continue;
            }
            match classify(name) {
                WebsiteColumn::Update(q) => {
                    let q = QualRef::Name(q);
                    match updates.iter().find(|(_, other)| *other == q) {
                        Some((j, _)) => problems.push((
                            Some(i),
                            format!(
                                "is the second column for this qualification (the first is column {}, {}); keep one",
                                j + 1,
                                header.names[*j]
                            ),
                        )),
                        None => updates.push((i, q)),
                    }
                }
                WebsiteColumn::Block => match block {
                    Some(j) => problems.push((
                        Some(i),
                        format!(
                            "is a second block column (the first is column {}, {}); keep one",
                            j + 1,
                            header.names[j]
                        ),
                    )),
                    None => block = Some(i),
                },
                // The website's own columns: read by nobody.
                WebsiteColumn::Current => {}
                WebsiteColumn::Other if is_statistic(name) => {}
                WebsiteColumn::UnnamedUpdate => problems.push((
                    Some(i),
                    "is an UPDATE- column without a qualification name; write the name after the hyphen (UPDATE-Good Tagger), as the website's CURRENT- column does".into(),
                )),
                WebsiteColumn::MistypedUpdate => problems.push((
                    Some(i),
                    format!(
                        "unknown column prefix: changes go in columns named exactly UPDATE-<qualification name> (or UPDATE-BlockStatus); rename it{}, or delete it",
                        suggestion(name)
                            .map(|s| format!(" to {s}"))
                            .unwrap_or_default()
                    ),
                )),
                // Spreadsheets leave unnamed columns behind; only one holding values matters.
                WebsiteColumn::Other if header.unnamed(i) => unnamed.push(i),
                WebsiteColumn::Other => problems.push((
                    Some(i),
                    "unknown column: a worker file from the requester website has UPDATE- columns for changes and the website's own columns (Worker ID, CURRENT-…, approval rates), which are ignored; rename it UPDATE-<qualification name> if it holds changes, or delete it".into(),
                )),
            }
        }
        if let Some(reason) = &opts.block_reason {
            if block.is_some() && reason.trim().is_empty() {
                problems.push((
                    None,
                    "--block-reason is empty; MTurk requires a reason to block a worker".into(),
                ));
            }
            let chars = reason.chars().count();
            if block.is_some() && chars > super::row::MAX_REASON_CHARS {
                problems.push((
                    None,
                    format!(
                        "--block-reason is {chars} characters long; MTurk accepts at most {}",
                        super::row::MAX_REASON_CHARS
                    ),
                ));
            }
        }
        if let Some(reason) = &opts.default_reason {
            let chars = reason.chars().count();
            if !updates.is_empty() && chars > super::row::MAX_REASON_CHARS {
                problems.push((
                    None,
                    format!(
                        "--reason is {chars} characters long; MTurk accepts at most {}",
                        super::row::MAX_REASON_CHARS
                    ),
                ));
            }
        }
        if updates.is_empty() && block.is_none() {
            if problems.is_empty() {
                problems.push((None, "the worker file has no UPDATE- columns, so it asks for no change; fill in UPDATE-<qualification name> (a score from 0 to 100, or Revoke) or UPDATE-BlockStatus (Block or Unblock)".into()));
            }
            return (None, problems);
        }
        let layout = worker.map(|worker| WebsiteLayout {
            worker,
            updates,
            block,
            unnamed,
        });
        (layout, problems)
    }

    pub(crate) fn used(&self) -> Vec<usize> {
        let mut v = vec![self.worker];
        v.extend(self.updates.iter().map(|(i, _)| *i));
        v.extend(self.block);
        v.extend(&self.unnamed);
        v
    }

    /// Validates one row: every non-empty UPDATE cell is one operation, located at its column.
    pub(crate) fn row(
        &self,
        row: &mut RowCtx<'_>,
        opts: &InputOptions,
        emit: &mut dyn FnMut(Option<usize>, Operation),
    ) {
        let worker = row.parse(self.worker, |s| {
            if s.is_empty() {
                Err("worker ID is empty".into())
            } else {
                parse_worker(s)
            }
        });
        let mut ops = Vec::new();
        for (i, qual) in &self.updates {
            if let Some(Some(change)) = row.parse(*i, parse_update) {
                ops.push((*i, Change::Qualification(qual, change)));
            }
        }
        if let Some(i) = self.block {
            let block = row.parse(i, |s| parse_block(s, opts.block_reason.as_deref()));
            if let Some(Some(b)) = block {
                ops.push((i, b));
            }
        }
        for &i in &self.unnamed {
            row.parse(i, |s| {
                if s.is_empty() {
                    Ok(())
                } else {
                    Err("is in a column without a name, so payout cannot tell what it asks for; name the column UPDATE-<qualification name>, or clear the cell".into())
                }
            });
        }
        let Some(worker) = worker else { return };
        for (i, change) in ops {
            emit(Some(i), change.into_op(&worker, opts));
        }
    }
}

/// The website section of the qualification contract.
fn website_spec() -> &'static super::columns::WebsiteSpec {
    qualification_schema()
        .website
        .as_ref()
        .expect("schemas/qualifications.columns.json has a website section")
}

/// `UPDATE-Foo` for a mistyped `Update_Foo`, when a name follows the prefix.
fn suggestion(name: &str) -> Option<String> {
    let rest = name
        .trim()
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .trim_start_matches([' ', '_', '-', '.', ':'])
        .trim();
    (!rest.is_empty()).then(|| format!("{UPDATE_PREFIX}{rest}"))
}

enum ScoreChange {
    Score(i32),
    Revoke,
}

enum Change<'a> {
    Qualification(&'a QualRef, ScoreChange),
    Block(String),
    Unblock,
}

impl Change<'_> {
    fn into_op(self, worker: &WorkerId, opts: &InputOptions) -> Operation {
        let worker = worker.clone();
        match self {
            Change::Qualification(q, ScoreChange::Score(value)) => Operation::Score {
                worker,
                qualification: q.clone(),
                value,
                notify: opts.notify,
            },
            Change::Qualification(q, ScoreChange::Revoke) => Operation::Revoke {
                worker,
                qualification: q.clone(),
                reason: opts
                    .default_reason
                    .as_deref()
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned),
            },
            Change::Block(reason) => Operation::Block { worker, reason },
            Change::Unblock => Operation::Unblock {
                worker,
                reason: opts.block_reason.clone(),
            },
        }
    }
}

/// An `UPDATE-<qualification>` cell: empty (no change), a score from 0 to 100, or `Revoke`.
fn parse_update(text: &str) -> Result<Option<ScoreChange>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.eq_ignore_ascii_case("revoke") {
        return Ok(Some(ScoreChange::Revoke));
    }
    let fail = || {
        format!(
            "{text:?} is neither a score from 0 to {MAX_SCORE} nor Revoke; leave the cell empty to change nothing"
        )
    };
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail());
    }
    match text.parse::<u32>() {
        Ok(v) if v <= MAX_SCORE => Ok(Some(ScoreChange::Score(v as i32))),
        _ => Err(format!(
            "score {text} is more than {MAX_SCORE}; the website's scores are 0 to {MAX_SCORE}"
        )),
    }
}

/// An `UPDATE-BlockStatus` cell: empty, `Block` (which needs `--block-reason`) or `Unblock`.
fn parse_block(text: &str, reason: Option<&str>) -> Result<Option<Change<'static>>, String> {
    if text.is_empty() {
        Ok(None)
    } else if text.eq_ignore_ascii_case("block") {
        match reason {
            Some(r) => Ok(Some(Change::Block(r.trim().to_owned()))),
            None => Err("Block needs a reason, which MTurk requires and shows the worker; give it with --block-reason TEXT".into()),
        }
    } else if text.eq_ignore_ascii_case("unblock") {
        Ok(Some(Change::Unblock))
    } else {
        Err(format!(
            "{text:?} is neither Block nor Unblock; leave the cell empty to change nothing"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::scan::tests::problems_of;
    use crate::input::{Format, parse_bytes, scan_bytes};
    use crate::op::Origin;

    const HEADER: &str = "Worker ID,Lifetime Approval Rate,Last 30 Days Approval Rate,Last 7 Days Approval Rate,CURRENT-Good Tagger,UPDATE-Good Tagger,CURRENT-Panel,UPDATE-Panel,CURRENT BlockStatus,UPDATE-BlockStatus\n";

    fn w(s: &str) -> WorkerId {
        WorkerId::parse(s).unwrap()
    }

    fn with_reason() -> InputOptions {
        InputOptions {
            block_reason: Some("Answered at random".into()),
            ..Default::default()
        }
    }

    fn at(line: u64, column: &str) -> Origin {
        Origin {
            line,
            column: Some(column.into()),
        }
    }

    #[test]
    fn each_update_cell_is_one_operation_located_at_its_column() {
        let text = format!(
            "{HEADER}A1,100% (10/10),100% (2/2),0% (0/0),,80,50,revoke,Never Blocked,\nA2,90%,90%,90%,,,,,Blocked,Unblock\nA3,1,1,1,,,,,Never Blocked,block\nA4,1,1,1,,,,,,\n"
        );
        let rows = parse_bytes(text.as_bytes(), "workers.csv", &with_reason()).unwrap();
        let got: Vec<(Origin, Operation)> = rows.into_iter().map(|r| (r.origin, r.op)).collect();
        assert_eq!(
            got,
            vec![
                (
                    at(2, "UPDATE-Good Tagger"),
                    Operation::Score {
                        worker: w("A1"),
                        qualification: QualRef::Name("Good Tagger".into()),
                        value: 80,
                        notify: false
                    }
                ),
                (
                    at(2, "UPDATE-Panel"),
                    Operation::Revoke {
                        worker: w("A1"),
                        qualification: QualRef::Name("Panel".into()),
                        reason: None
                    }
                ),
                (
                    at(3, "UPDATE-BlockStatus"),
                    Operation::Unblock {
                        worker: w("A2"),
                        reason: Some("Answered at random".into())
                    }
                ),
                (
                    at(4, "UPDATE-BlockStatus"),
                    Operation::Block {
                        worker: w("A3"),
                        reason: "Answered at random".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn the_websites_own_columns_are_ignored_and_listed() {
        let text = format!("{HEADER}A1,1,1,1,,80,,,,\n");
        let facts = scan_bytes(text.as_bytes(), "w.csv", &with_reason(), &mut |_| {}).unwrap();
        assert_eq!(facts.format, Format::WebsiteWorkers);
        assert_eq!(
            facts.ignored_columns,
            [
                "Lifetime Approval Rate",
                "Last 30 Days Approval Rate",
                "Last 7 Days Approval Rate",
                "CURRENT-Good Tagger",
                "CURRENT-Panel",
                "CURRENT BlockStatus"
            ]
        );
    }

    #[test]
    fn scores_are_0_to_100_or_revoke_and_blocks_need_a_reason() {
        let text = format!(
            "{HEADER}A1,,,,,101,-1,Revok,,Block\nA2,,,,,80.5,,,,Blok\na3,,,,,5,,,,\n,,,,,5,,,,\n"
        );
        let p = problems_of(text.as_bytes(), &InputOptions::default());
        assert_eq!(
            p,
            vec![
                "line 2, column UPDATE-Good Tagger: score 101 is more than 100; the website's scores are 0 to 100",
                "line 2, column UPDATE-Panel: \"Revok\" is neither a score from 0 to 100 nor Revoke; leave the cell empty to change nothing",
                "line 2, column UPDATE-BlockStatus: Block needs a reason, which MTurk requires and shows the worker; give it with --block-reason TEXT",
                "line 3, column UPDATE-Good Tagger: \"80.5\" is neither a score from 0 to 100 nor Revoke; leave the cell empty to change nothing",
                "line 3, column UPDATE-BlockStatus: \"Blok\" is neither Block nor Unblock; leave the cell empty to change nothing",
                "line 4, column Worker ID: worker ID \"a3\" is in lower case; MTurk worker IDs are capital letters and digits (A3)",
                "line 5, column Worker ID: worker ID is empty",
            ]
        );
    }

    #[test]
    fn mistyped_and_unknown_columns_are_refused_not_ignored() {
        for (name, want) in [
            ("UPDATE_Panel", "rename it to UPDATE-Panel"),
            ("Update Panel", "rename it to UPDATE-Panel"),
            ("UDPATE-Panel", "rename it to UPDATE-Panel"),
            ("UpdatePanel", "unknown column prefix"),
            ("Updated scores", "unknown column prefix"),
            ("UPDAT-Panel", "rename it to UPDATE-Panel"),
        ] {
            let text = format!("Worker ID,UPDATE-Good Tagger,{name}\nA1,5,5\n");
            let p = problems_of(text.as_bytes(), &InputOptions::default());
            assert_eq!(p.len(), 1, "{name}: {p:?}");
            assert!(
                p[0].starts_with(&format!("line 1, column {name}: unknown column prefix")),
                "{name}: {p:?}"
            );
            assert!(p[0].contains(want), "{name}: {p:?}");
        }
        let p = problems_of(
            b"Worker ID,UPDATE-,UPDATE-Panel,Notes\nA1,5,5,x\n",
            &InputOptions::default(),
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with(
            "line 1, column UPDATE-: is an UPDATE- column without a qualification name"
        ));
        assert!(p[1].starts_with("line 1, column Notes: unknown column"));
        // A column without a name must be empty.
        let text = "Worker ID,UPDATE-Panel,\nA1,5,\nA2,5,oops\n";
        let p = problems_of(text.as_bytes(), &InputOptions::default());
        assert_eq!(
            p,
            [
                "line 3, column #3: is in a column without a name, so payout cannot tell what it asks for; name the column UPDATE-<qualification name>, or clear the cell"
            ]
        );
        // Only a mistyped column: still recognised as the website's file, and refused.
        let p = problems_of(b"Worker ID,UPDATE_Panel\nA1,5\n", &InputOptions::default());
        assert!(p[0].contains("unknown column prefix"), "{p:?}");
    }

    #[test]
    fn rows_are_still_checked_when_a_column_is_refused() {
        let p = problems_of(
            b"Worker ID,UPDATE-Panel,UPDATE_Tagger\nA1,500,\n",
            &InputOptions::default(),
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("line 1, column UPDATE_Tagger: unknown column prefix"));
        assert!(p[1].starts_with("line 2, column UPDATE-Panel: score 500 is more than 100"));
    }

    #[test]
    fn two_columns_for_one_qualification_are_refused() {
        let p = problems_of(
            b"Worker ID,UPDATE-Panel,update-Panel,UPDATE-BlockStatus,UPDATE BlockStatus\nA1,5,5,,\n",
            &InputOptions::default(),
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("line 1, column update-Panel: is the second column for this qualification (the first is column 2, UPDATE-Panel)"));
        assert!(p[1].starts_with("line 1, column UPDATE BlockStatus: is a second block column"));
    }

    #[test]
    fn a_worker_listed_twice_conflicts_per_qualification_and_block() {
        let text = format!(
            "{HEADER}A1,,,,,80,,,,Block\nA2,,,,,,,,,\nA1,,,,,70,,5,,Unblock\nA1,,,,,80,,,,\nA2,,,,,revoke,,,,\nA2,,,,,5,,,,\n"
        );
        let p = problems_of(text.as_bytes(), &with_reason());
        assert_eq!(
            p,
            vec![
                "line 4, column UPDATE-Good Tagger: conflicts with line 2, column UPDATE-Good Tagger: the same worker and qualification get score 80 there but score 70 here; keep one",
                "line 4, column UPDATE-BlockStatus: conflicts with line 2, column UPDATE-BlockStatus: the same worker is blocked there but unblocked here; keep one",
                "line 5, column UPDATE-Good Tagger: repeats line 2, column UPDATE-Good Tagger (the same worker and qualification get score 80 in both); remove one",
                "line 7, column UPDATE-Good Tagger: conflicts with line 6, column UPDATE-Good Tagger: the same worker and qualification get a revoke there but score 5 here; keep one",
            ]
        );
    }

    #[test]
    fn a_file_without_changes_is_refused() {
        let p = problems_of(
            format!("{HEADER}A1,,,,,,,,,\n").as_bytes(),
            &InputOptions::default(),
        );
        assert!(p[0].contains("no changes"), "{p:?}");
        let p = problems_of(
            b"Worker ID,CURRENT-Panel\nA1,5\n",
            &InputOptions {
                kind: Some(crate::item::BatchKind::Qualification),
                ..Default::default()
            },
        );
        assert!(p[0].contains("has no UPDATE- columns"), "{p:?}");
    }

    #[test]
    fn options_that_cannot_apply_are_refused() {
        let text = b"Worker ID,UPDATE-Panel,UPDATE-BlockStatus\nA1,5,Block\n";
        let p = problems_of(
            text,
            &InputOptions {
                block_reason: Some("  ".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            p[0],
            "line 1: --block-reason is empty; MTurk requires a reason to block a worker"
        );
        let p = problems_of(
            text,
            &InputOptions {
                block_reason: Some("r".into()),
                qualification: Some("Panel".into()),
                ..Default::default()
            },
        );
        assert!(p[0].starts_with("line 1: --qualification names one qualification for a whole file, but this is a worker file"), "{p:?}");
    }

    #[test]
    fn column_classes() {
        assert_eq!(
            classify("UPDATE-Good Tagger"),
            WebsiteColumn::Update("Good Tagger".into())
        );
        assert_eq!(classify("update-x"), WebsiteColumn::Update("x".into()));
        assert_eq!(classify("UPDATE-BlockStatus"), WebsiteColumn::Block);
        assert_eq!(classify("UPDATE BlockStatus"), WebsiteColumn::Block);
        assert_eq!(classify("CURRENT-Good Tagger"), WebsiteColumn::Current);
        assert_eq!(classify("CURRENT BlockStatus"), WebsiteColumn::Current);
        assert_eq!(classify("UPDATE- "), WebsiteColumn::UnnamedUpdate);
        assert_eq!(classify("UPDATES-x"), WebsiteColumn::MistypedUpdate);
        assert_eq!(classify("Worker ID"), WebsiteColumn::Other);
        assert_eq!(classify("Uptake"), WebsiteColumn::Other);
        assert!(one_slip(b"udpate", b"update"));
        assert!(one_slip(b"updat", b"update"));
        assert!(one_slip(b"updatx", b"update"));
        assert!(one_slip(b"upddate", b"update"));
        assert!(!one_slip(b"uptake", b"update"));
        assert!(!one_slip(b"dupate", b"update"));
        assert!(!one_slip(b"worker", b"update"));
        assert!(is_statistic("Lifetime Approval Rate"));
        assert!(is_statistic("Last 7 Days Approval Rate"));
        assert!(is_statistic("Last 30 Days Approved"));
        assert!(is_statistic("Lifetime Approved/Submitted"));
        assert!(!is_statistic("Notes"));
        assert!(!is_statistic("Last name"));
        assert!(!is_statistic("Lifetimes"));
        assert_eq!(classify("Currently employed"), WebsiteColumn::Other);
        assert_eq!(classify("current_Panel"), WebsiteColumn::Current);
    }

    #[test]
    fn the_schema_describes_these_rules() {
        let spec = website_spec();
        assert_eq!(spec.update_prefix, UPDATE_PREFIX);
        assert_eq!(spec.block_column, format!("{UPDATE_PREFIX}{BLOCK_STATUS}"));
        assert_eq!(spec.score_minimum, 0);
        assert_eq!(spec.score_maximum, i64::from(MAX_SCORE));
        assert!(spec.revoke_word.eq_ignore_ascii_case("revoke"));
        assert_eq!(spec.block_words, ["Block", "Unblock"]);
        assert_eq!(classify(&spec.worker_column), WebsiteColumn::Other);
    }

    proptest::proptest! {
        /// Website scores: the validator accepts exactly what the schema's pattern and range do.
        #[test]
        fn scores_agree_with_the_schema(text in "[0-9a-z.+-]{0,4}") {
            let spec = website_spec();
            let pattern = regex::Regex::new(&spec.score_pattern).unwrap();
            let in_range = text.parse::<i64>().is_ok_and(|v| (spec.score_minimum..=spec.score_maximum).contains(&v));
            let is_score = pattern.is_match(&text) && in_range;
            let parsed = parse_update(&text);
            let want = text.is_empty() || is_score || text.eq_ignore_ascii_case(&spec.revoke_word);
            proptest::prop_assert_eq!(want, parsed.is_ok());
        }
    }
}
