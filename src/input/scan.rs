//! The input API: stream a file once, hand every valid operation to a sink in file order, and
//! return facts about the file or every problem in it.
//!
//! Synchronous and pure apart from reading the file: nothing here talks to MTurk or the
//! journal, so a file that fails here has caused nothing anywhere.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::item::BatchKind;
use crate::op::{Kind, Operation, Origin};

use super::bonus::BonusLayout;
use super::columns::{Header, detect};
use super::dedupe::{MAX_COLUMNS, Seen};
use super::problems::{InputErrors, Problems};
use super::qual_api::ApiLayout;
use super::records::{Flaw, MAX_RECORD_BYTES, Reader, Record};
use super::row::{RowCtx, control_char, control_message};
use super::sniff::{SNIFF_BYTES, sniff};
use super::spool::{Input, ROWS_PER_STOP_CHECK, STOPPED, stop_requested};
use super::website::WebsiteLayout;

/// One valid operation and where in the file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub origin: Origin,
    pub op: Operation,
}

/// The layout of a file, as told from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `WorkerId, AssignmentId, BonusAmount, Reason`: one bonus per row.
    Bonus,
    /// `WorkerId, QualificationTypeId, IntegerValue[, Action, Reason]`: one grant or revoke
    /// per row.
    QualificationApi,
    /// The requester website's worker CSV: one operation per non-empty `UPDATE-…` cell.
    WebsiteWorkers,
}

impl Format {
    pub fn kind(self) -> BatchKind {
        match self {
            Format::Bonus => BatchKind::Bonus,
            Format::QualificationApi | Format::WebsiteWorkers => BatchKind::Qualification,
        }
    }

    /// How the format reads in a sentence.
    pub fn describe(self) -> &'static str {
        match self {
            Format::Bonus => "bonus file",
            Format::QualificationApi => "qualification file",
            Format::WebsiteWorkers => "worker file from the requester website",
        }
    }
}

/// How to read a file: the knobs the command line offers.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// Read the amount from this column instead of the recognised names.
    pub amount_column: Option<String>,
    /// Reason for bonus rows whose reason is empty, or for files without a reason column; in
    /// qualification files, the reason sent with revokes that have none.
    pub default_reason: Option<String>,
    /// Accept bonus rows that repeat another row's worker, assignment, amount and reason.
    pub allow_duplicates: bool,
    /// What the file is for (`--kind`); told from the header when `None`.
    pub kind: Option<BatchKind>,
    /// The qualification (ID or name) of every row of an API-style qualification file without
    /// a qualification column (`--qualification`).
    pub qualification: Option<String>,
    /// Whether MTurk e-mails workers about their grants (`--notify`). Off unless asked for.
    pub notify: bool,
    /// The reason for the website file's `Block` (and `Unblock`) cells (`--block-reason`).
    pub block_reason: Option<String>,
}

/// What a valid file turned out to be.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileFacts {
    pub kind: BatchKind,
    pub format: Format,
    /// The field separator (`,` unless an Excel `sep=` line said otherwise).
    pub delimiter: char,
    /// The header's line (2 after a `sep=` line).
    pub header_line: u64,
    /// Rows read, not counting the header and blank rows.
    pub rows: u64,
    /// Operations given to the sink (for website files, one per non-empty UPDATE cell).
    pub operations: u64,
    /// Operations per kind.
    pub by_kind: BTreeMap<Kind, u64>,
    /// Columns read by nobody (the website's own, or extra columns of a bonus file).
    pub ignored_columns: Vec<String>,
}

/// Streams the file at `path`: calls `sink` with every valid operation in file order (origin
/// order), and returns facts about the file, or every problem found.
///
/// Memory is bounded: the file is read once and never held whole (one record of at most
/// 8 MiB at a time), and duplicate detection keeps 32 bytes per operation. Rows given to `sink`
/// are provisional: if the result is `Err`, the caller discards them. Once a problem is found
/// no more rows are given, though the file is still read to the end to report all problems.
pub fn scan(
    path: &Path,
    opts: &InputOptions,
    sink: &mut dyn FnMut(Row),
) -> Result<FileFacts, InputErrors> {
    scan_file(path, opts, Repeats::Check, sink)
}

/// [`scan`] again over a file it accepted a moment ago, without looking for repeats (the 32
/// bytes per operation of that check are not needed twice). The caller must prove the rows are
/// the ones checked, by their fingerprint, before it uses them: an import does, before the
/// batch becomes usable.
pub fn rescan(
    path: &Path,
    opts: &InputOptions,
    sink: &mut dyn FnMut(Row),
) -> Result<FileFacts, InputErrors> {
    scan_file(path, opts, Repeats::Trust, sink)
}

fn scan_file(
    path: &Path,
    opts: &InputOptions,
    repeats: Repeats,
    sink: &mut dyn FnMut(Row),
) -> Result<FileFacts, InputErrors> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| InputErrors::whole(&name, format!("cannot read the file: {e}")))?;
    scan_reader(file, &name, opts, repeats, sink)
}

/// [`scan`] over an [`Input`]: a regular file opened again, or the spool of a pipe.
pub fn scan_input(
    input: &Input,
    opts: &InputOptions,
    sink: &mut dyn FnMut(Row),
) -> Result<FileFacts, InputErrors> {
    scan_input_with(input, opts, Repeats::Check, sink)
}

/// [`rescan`] over an [`Input`].
pub fn rescan_input(
    input: &Input,
    opts: &InputOptions,
    sink: &mut dyn FnMut(Row),
) -> Result<FileFacts, InputErrors> {
    scan_input_with(input, opts, Repeats::Trust, sink)
}

fn scan_input_with(
    input: &Input,
    opts: &InputOptions,
    repeats: Repeats,
    sink: &mut dyn FnMut(Row),
) -> Result<FileFacts, InputErrors> {
    let name = input.path().display().to_string();
    let reader = input
        .reader()
        .map_err(|e| InputErrors::whole(&name, format!("cannot read the file: {e}")))?;
    scan_reader(reader, &name, opts, repeats, sink)
}

/// Whether a pass looks for repeated and conflicting operations.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeats {
    Check,
    /// The file was checked by an earlier pass.
    Trust,
}

/// [`scan`] over bytes in memory; `name` labels messages.
pub fn scan_bytes(
    bytes: &[u8],
    name: &str,
    opts: &InputOptions,
    sink: &mut dyn FnMut(Row),
) -> Result<FileFacts, InputErrors> {
    scan_reader(bytes, name, opts, Repeats::Check, sink)
}

/// Every valid operation of `bytes`, for tests and small files.
pub fn parse_bytes(bytes: &[u8], name: &str, opts: &InputOptions) -> Result<Vec<Row>, InputErrors> {
    let mut rows = Vec::new();
    scan_bytes(bytes, name, opts, &mut |row| rows.push(row))?;
    Ok(rows)
}

/// How the rows of the detected format are validated.
enum Layout {
    Bonus(BonusLayout),
    Api(ApiLayout),
    Website(WebsiteLayout),
}

impl Layout {
    /// The layout for `format`, if the rows can be checked, and the header's problems.
    fn new(
        format: Format,
        header: &Header,
        opts: &InputOptions,
    ) -> (Option<Layout>, Vec<(Option<usize>, String)>) {
        let whole = |v: Vec<String>| v.into_iter().map(|m| (None, m)).collect();
        match format {
            Format::Bonus => match BonusLayout::new(header, opts) {
                Ok(l) => (Some(Layout::Bonus(l)), Vec::new()),
                Err(p) => (None, whole(p)),
            },
            Format::QualificationApi => match ApiLayout::new(header, opts) {
                Ok(l) => (Some(Layout::Api(l)), Vec::new()),
                Err(p) => (None, whole(p)),
            },
            Format::WebsiteWorkers => {
                let (layout, problems) = WebsiteLayout::new(header, opts);
                (layout.map(Layout::Website), problems)
            }
        }
    }

    fn used(&self) -> Vec<usize> {
        match self {
            Layout::Bonus(l) => l.used(),
            Layout::Api(l) => l.used(),
            Layout::Website(l) => l.used(),
        }
    }

    fn row(
        &self,
        row: &mut RowCtx<'_>,
        opts: &InputOptions,
        emit: &mut dyn FnMut(Option<usize>, Operation),
    ) {
        match self {
            Layout::Bonus(l) => l.row(row, opts, emit),
            Layout::Api(l) => l.row(row, opts, emit),
            Layout::Website(l) => l.row(row, opts, emit),
        }
    }
}

fn scan_reader(
    mut src: impl Read,
    name: &str,
    opts: &InputOptions,
    repeats: Repeats,
    sink: &mut dyn FnMut(Row),
) -> Result<FileFacts, InputErrors> {
    let cannot_read = |e: io::Error| InputErrors::whole(name, format!("cannot read the file: {e}"));
    let mut prefix = Vec::with_capacity(SNIFF_BYTES);
    (&mut src)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut prefix)
        .map_err(cannot_read)?;
    let start = sniff(&prefix).map_err(|(line, message)| {
        let mut p = Problems::default();
        p.line(line, message);
        p.into_errors(name)
    })?;
    let first_line = if start.sep_line { 2 } else { 1 };
    let body = io::Cursor::new(&prefix[start.skip..]).chain(src);
    let mut reader = Reader::new(
        BufReader::with_capacity(64 << 10, body),
        start.delimiter,
        first_line,
    );
    let mut problems = Problems::default();
    let mut rec = Record::default();

    // The header: the first record that is not blank.
    loop {
        if !reader.read(&mut rec).map_err(cannot_read)? {
            return Err(InputErrors::whole(
                name,
                "the file is empty; expected a header line such as WorkerId,AssignmentId,BonusAmount,Reason and one row per bonus",
            ));
        }
        if !rec.is_blank() || rec.unclosed().is_some() || rec.oversize().is_some() {
            break;
        }
    }
    let header_line = rec.line;
    // Until the header is decoded, its columns are named by position.
    let by_position = Header::new(vec![String::new(); rec.len()]);
    if !structure_ok(&rec, &by_position, &mut problems) {
        return Err(problems.into_errors(name));
    }
    if rec.len() > MAX_COLUMNS {
        problems.line(
            header_line,
            format!(
                "the header has {} columns; payout reads at most {MAX_COLUMNS}",
                rec.len()
            ),
        );
        return Err(problems.into_errors(name));
    }
    let mut names = Vec::with_capacity(rec.len());
    for i in 0..rec.len() {
        let col = Some((i, by_position.names[i].as_str()));
        if let Some((at, c)) = control_char(rec.raw(i), rec.info(i).quoted) {
            problems.add(header_line, col, || control_message(at, c));
        }
        match std::str::from_utf8(rec.trimmed(i)) {
            Ok(s) => names.push(s.to_owned()),
            Err(_) => {
                problems.add(header_line, col, || {
                    "is not valid UTF-8; save the file as UTF-8 (CSV UTF-8 in Excel)".into()
                });
                names.push(String::from_utf8_lossy(rec.trimmed(i)).into_owned());
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems.into_errors(name));
    }
    if let [only] = names.as_slice()
        && let Some(message) = other_delimiter(only, start.delimiter)
    {
        problems.line(header_line, message);
        return Err(problems.into_errors(name));
    }
    let header = Header::new(names);
    let detected = match detect(&header, opts) {
        Ok(d) => d,
        Err(message) => {
            problems.line(header_line, message);
            return Err(problems.into_errors(name));
        }
    };
    let format = detected.format;
    let (layout, found) = Layout::new(format, &header, opts);
    for (col, message) in found {
        problems.add(
            header_line,
            col.map(|i| (i, header.names[i].as_str())),
            || message,
        );
    }
    let Some(layout) = layout else {
        if detected.guessed {
            problems.line(header_line, "payout could not tell what this file is for and read it as bonuses; a qualification file has WorkerId, QualificationTypeId and IntegerValue columns (or give --kind qualification), and the requester website's worker file has UPDATE- columns");
        }
        return Err(problems.into_errors(name));
    };
    let used = layout.used();
    let ignored_columns: Vec<String> = (0..header.names.len())
        .filter(|i| !used.contains(i) && !header.unnamed(*i))
        .map(|i| header.names[i].clone())
        .collect();

    let mut seen = Seen::default();
    let mut by_kind: BTreeMap<Kind, u64> = BTreeMap::new();
    let mut rows = 0u64;
    let mut operations = 0u64;
    let mut bad = Vec::new();
    loop {
        // A signal asked payout to stop: a long file ends here, not at its end.
        if rows.is_multiple_of(ROWS_PER_STOP_CHECK) && stop_requested() {
            return Err(InputErrors::whole(name, STOPPED));
        }
        match reader.read(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                problems.whole(format!("cannot read the file: {e}"));
                break;
            }
        }
        if rec.is_blank() && rec.unclosed().is_none() && rec.oversize().is_none() {
            continue;
        }
        rows += 1;
        let line = rec.line;
        if !structure_ok(&rec, &header, &mut problems) {
            continue;
        }
        if rec.len() != header.names.len() {
            let (n, h) = (rec.len(), header.names.len());
            problems.line(line, field_count_message(n, h, format));
            continue;
        }
        // Control characters anywhere, read or not: they mean the file is not what it seems.
        bad.clear();
        for i in 0..rec.len() {
            let found = control_char(rec.raw(i), rec.info(i).quoted);
            if let Some((at, c)) = found {
                problems.add(rec.info(i).line, Some((i, &header.names[i])), || {
                    control_message(at, c)
                });
            }
            bad.push(found.is_some());
        }
        let mut ctx = RowCtx {
            line,
            rec: &rec,
            header: &header,
            problems: &mut problems,
            bad: &bad,
        };
        let mut found = Vec::new();
        layout.row(&mut ctx, opts, &mut |col, op| found.push((col, op)));
        for (col, op) in found {
            if repeats == Repeats::Check {
                seen.add(&op, line, col);
            }
            operations += 1;
            *by_kind.entry(op.kind()).or_default() += 1;
            if problems.is_empty() {
                sink(Row {
                    origin: Origin {
                        line,
                        column: col.map(|i| header.names[i].clone()),
                    },
                    op,
                });
            }
        }
    }
    seen.finish(
        opts.allow_duplicates && format == Format::Bonus,
        &header,
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(problems.into_errors(name));
    }
    if operations == 0 {
        let message = match format {
            Format::Bonus => "the file has a header but no rows to pay",
            Format::QualificationApi => "the file has a header but no rows",
            Format::WebsiteWorkers => "the file asks for no changes: every UPDATE- cell is empty",
        };
        return Err(InputErrors::whole(name, message));
    }
    Ok(FileFacts {
        kind: format.kind(),
        format,
        delimiter: char::from(start.delimiter),
        header_line,
        rows,
        operations,
        by_kind,
        ignored_columns,
    })
}

/// Reports quoting gone wrong and records too long to read; true when the record is sound.
fn structure_ok(rec: &Record, header: &Header, problems: &mut Problems) -> bool {
    let column = |i: usize| header.names.get(i).map(|n| (i, n.as_str()));
    if let Some((line, i)) = rec.unclosed() {
        problems.add(line, column(i), || {
            "a double quote opens here and is never closed, so everything after it to the end of the file would be read as this one value; close the quote, or write a double quote inside a value as two (\"\")".into()
        });
        return false;
    }
    if let Some(size) = rec.oversize() {
        problems.line(rec.line, format!(
            "the row is {size} bytes long; payout reads rows of up to {} MiB (is a double quote left open?)",
            MAX_RECORD_BYTES >> 20
        ));
        return false;
    }
    let mut ok = true;
    for i in 0..rec.len() {
        if let Some(Flaw::TextAfterQuote { line }) = rec.info(i).flaw {
            problems.add(line, column(i), || {
                "has text after its closing double quote; inside a quoted value write a double quote as two (\"\"), as in \"say \"\"hi\"\"\"".into()
            });
            ok = false;
        }
    }
    ok
}

/// "has 5 fields, but the header has 4", with the hint that fits.
fn field_count_message(n: usize, header: usize, format: Format) -> String {
    let fields = |n: usize| format!("{n} field{}", if n == 1 { "" } else { "s" });
    if n > header {
        let what = match format {
            Format::Bonus => "a reason",
            _ => "a value",
        };
        format!(
            "has {}, but the header has {header}; {what} containing a comma must be in double quotes",
            fields(n)
        )
    } else {
        format!(
            "has {}, but the header has {header}; a value is missing: every row needs a field for each column, an empty one too (two commas in a row)",
            fields(n)
        )
    }
}

/// A header read as one column that another separator would have split: the file was saved
/// with semicolons (a European Excel) or tabs.
fn other_delimiter(only: &str, delimiter: u8) -> Option<String> {
    let (sep, name, line) = [
        (b';', "semicolons", "sep=;"),
        (b'\t', "tabs", "sep= followed by a tab"),
        (b'|', "| characters", "sep=|"),
    ]
    .into_iter()
    .find(|(sep, _, _)| *sep != delimiter && only.as_bytes().contains(sep))?;
    let _ = sep;
    Some(format!(
        "the header is one column, {only:?}: the file seems to be separated by {name}, not commas; save it as CSV UTF-8 (Comma delimited), or add the line {line} at the top of the file"
    ))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::money::Cents;

    /// Every problem of a file that must be refused, as text.
    pub(crate) fn problems_of(bytes: &[u8], opts: &InputOptions) -> Vec<String> {
        match parse_bytes(bytes, "t.csv", opts) {
            Ok(rows) => panic!("accepted {} rows", rows.len()),
            Err(e) => e.problems.iter().map(ToString::to_string).collect(),
        }
    }

    /// (line, worker, assignment, amount, reason) of a bonus row.
    pub(crate) fn bonus_fields(row: &Row) -> (u64, String, String, Cents, String) {
        match &row.op {
            Operation::Bonus {
                worker,
                assignment,
                amount,
                reason,
            } => (
                row.origin.line,
                worker.to_string(),
                assignment.to_string(),
                *amount,
                reason.clone(),
            ),
            other => panic!("not a bonus: {other:?}"),
        }
    }

    const HEADER: &str = "WorkerId,AssignmentId,BonusAmount,Reason\n";

    fn problems(text: &str) -> Vec<String> {
        problems_of(text.as_bytes(), &InputOptions::default())
    }

    #[test]
    fn an_unclosed_quote_is_refused_at_the_line_it_opened() {
        // Issue 6: the rest of the file used to become line 3's reason, and rows 4-5 were
        // never paid.
        let text = format!("{HEADER}A1,X1,1,ok\nA2,X2,1,\"Thanks\nA3,X3,1,ok\nA4,X4,1,ok\n");
        assert_eq!(
            problems(&text),
            [
                "line 3, column Reason: a double quote opens here and is never closed, so everything after it to the end of the file would be read as this one value; close the quote, or write a double quote inside a value as two (\"\")"
            ]
        );
        let rows = std::cell::Cell::new(0);
        let err = scan_bytes(
            text.as_bytes(),
            "t.csv",
            &InputOptions::default(),
            &mut |_| rows.set(rows.get() + 1),
        )
        .unwrap_err();
        assert_eq!(err.total, 1);
    }

    #[test]
    fn a_broken_header_is_located_by_column_position() {
        let p = problems("WorkerId,\"AssignmentId,BonusAmount,Reason\nA1,X1,1,ok\n");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("line 1, column #2: a double quote opens here and is never closed"),
            "{p:?}"
        );
        let p = problems("WorkerId,Assign\x07mentId,BonusAmount,Reason\nA1,X1,1,ok\n");
        assert!(
            p[0].starts_with("line 1, column #2: contains the control character U+0007"),
            "{p:?}"
        );
        let p = problems("\n\nWorkerId,AssignmentId,BonusAmount\nA1,X1,1\n");
        assert!(p[0].starts_with("line 3: no reason column"), "{p:?}");
    }

    #[test]
    fn a_row_too_long_to_hold_is_refused_without_holding_it() {
        let huge = "x".repeat(MAX_RECORD_BYTES as usize + 1);
        let text = format!("{HEADER}A1,X1,1,ok\nA2,X2,1,\"{huge}\"\nA3,X3,1,ok\n");
        let p = problems(&text);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("line 3: the row is 8388"), "{p:?}");
        assert!(p[0].contains("payout reads rows of up to 8 MiB"), "{p:?}");
    }

    #[test]
    fn text_after_a_closing_quote_is_refused() {
        let text = format!("{HEADER}A1,X1,1,\"Thanks \"great\" work\"\n");
        let p = problems(&text);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("line 2, column Reason: has text after its closing double quote"),
            "{p:?}"
        );
    }

    #[test]
    fn control_characters_are_refused_with_line_and_column() {
        let text = format!(
            "{HEADER}A1,X1,1,ok\nA2,X\0,1,ok\nA3,X3,1,bell\x07\nA4,X4,1,\"tab\tand\r\nbreak\"\n"
        );
        let p = problems(&text);
        assert_eq!(
            p,
            [
                "line 3, column AssignmentId: contains a NUL byte (character 2); this usually means the file is UTF-16 or not a text file at all: open it and save it as CSV UTF-8",
                "line 4, column Reason: contains the control character U+0007 (character 5), invisible in most editors; delete it (tabs are fine, and line breaks inside double quotes)",
            ]
        );
        // Also in columns nobody reads.
        let p = problems("WorkerId,AssignmentId,BonusAmount,Reason,Notes\nA1,X1,1,ok,\x1b[0m\n");
        assert!(p[0].starts_with("line 2, column Notes: contains the control character U+001B"));
    }

    #[test]
    fn utf16_files_are_named_as_such() {
        let mut le = vec![0xFF, 0xFE];
        le.extend(
            format!("{HEADER}A1,X1,1,ok\n")
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        let p = problems_of(&le, &InputOptions::default());
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("the file is UTF-16; save it as UTF-8 (CSV UTF-8 in Excel)"));
        let be: Vec<u8> = format!("{HEADER}A1,X1,1,ok\n")
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let p = problems_of(&be, &InputOptions::default());
        assert!(p[0].starts_with("the file is UTF-16; save it as UTF-8 (CSV UTF-8 in Excel)"));
    }

    #[test]
    fn an_excel_sep_line_is_read_and_counted_as_line_1() {
        let text = format!("sep=,\n{HEADER}A1,X1,1,ok\nA2,X2,bad,ok\n");
        let p = problems(&text);
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("line 4, column BonusAmount"), "{p:?}");
        let rows = parse_bytes(b"sep=;\r\nWorkerId;AssignmentId;BonusAmount;Reason\r\nA1;X1;1.50;\"Thanks; really\"\r\n", "t", &InputOptions::default()).unwrap();
        assert_eq!(
            bonus_fields(&rows[0]),
            (
                3,
                "A1".into(),
                "X1".into(),
                Cents(150),
                "Thanks; really".into()
            )
        );
        let facts = scan_bytes(
            b"sep=\t\nWorkerId\tAssignmentId\tBonusAmount\tReason\nA1\tX1\t1\tok\n",
            "t",
            &InputOptions::default(),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!((facts.delimiter, facts.header_line), ('\t', 2));
    }

    #[test]
    fn a_header_split_by_another_separator_says_so() {
        let p = problems("WorkerId;AssignmentId;BonusAmount;Reason\nA1;X1;1;ok\n");
        assert_eq!(
            p,
            [
                "line 1: the header is one column, \"WorkerId;AssignmentId;BonusAmount;Reason\": the file seems to be separated by semicolons, not commas; save it as CSV UTF-8 (Comma delimited), or add the line sep=; at the top of the file"
            ]
        );
    }

    #[test]
    fn a_header_that_fits_nothing_says_what_payout_looks_for() {
        let p = problems("Worker,Amt,Why\nA1,1,x\n");
        assert!(
            p.last()
                .unwrap()
                .contains("payout could not tell what this file is for"),
            "{p:?}"
        );
    }

    #[test]
    fn facts_describe_the_file() {
        let text = "WorkerId,AssignmentId,BonusAmount,Reason,Notes\nA1,X1,1,ok,n\n\nA2,X2,2,ok,\n";
        let mut n = 0;
        let facts = scan_bytes(text.as_bytes(), "t", &InputOptions::default(), &mut |_| {
            n += 1
        })
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(facts.kind, BatchKind::Bonus);
        assert_eq!(facts.format, Format::Bonus);
        assert_eq!(facts.rows, 2);
        assert_eq!(facts.operations, 2);
        assert_eq!(facts.by_kind, BTreeMap::from([(Kind::Bonus, 2)]));
        assert_eq!(facts.ignored_columns, ["Notes"]);
        assert_eq!(facts.header_line, 1);
    }

    #[test]
    fn rows_reach_the_sink_in_file_order_and_stop_at_the_first_problem() {
        let text = format!("{HEADER}A1,X1,1,a\nA2,X2,1,b\nA3,X3,bad,c\nA4,X4,1,d\n");
        let mut lines = Vec::new();
        let err = scan_bytes(text.as_bytes(), "t", &InputOptions::default(), &mut |r| {
            lines.push(r.origin.line)
        })
        .unwrap_err();
        assert_eq!(lines, [2, 3]);
        assert_eq!(err.total, 1);
    }

    #[test]
    fn a_missing_file_is_a_problem_of_the_whole_file() {
        let err = scan(
            Path::new("/nonexistent/payout.csv"),
            &InputOptions::default(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(err.problems[0].message.starts_with("cannot read the file"));
    }

    #[test]
    fn reads_a_file_from_disk_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.csv");
        let mut text = String::from(HEADER);
        for i in 0..5000 {
            text.push_str(&format!(
                "A{i},X{i},1.{:02},\"Round {i}, thanks\"\n",
                i % 100
            ));
        }
        std::fs::write(&path, &text).unwrap();
        let mut last = 0;
        let facts = scan(&path, &InputOptions::default(), &mut |r| {
            assert!(r.origin.line > last);
            last = r.origin.line;
        })
        .unwrap();
        assert_eq!(facts.operations, 5000);
        assert_eq!(last, 5001);
    }

    #[test]
    fn many_problems_are_counted_and_the_first_ones_kept() {
        let mut text = String::from(HEADER);
        for i in 0..3000 {
            text.push_str(&format!("A{i},X{i},$1,ok\n"));
        }
        let err = parse_bytes(text.as_bytes(), "t", &InputOptions::default()).unwrap_err();
        assert_eq!(err.total, 3000);
        assert_eq!(err.problems.len(), crate::input::MAX_STORED_PROBLEMS);
        assert_eq!(err.problems[0].line, 2);
        assert!(err.to_string().starts_with("t: 3000 problems found"));
    }

    #[test]
    fn the_examples_are_valid() {
        let facts = |text: &str, opts: &InputOptions| {
            scan_bytes(text.as_bytes(), "example", opts, &mut |_| {}).unwrap()
        };
        let b = facts(
            include_str!("../../examples/bonuses.csv"),
            &InputOptions::default(),
        );
        assert_eq!((b.format, b.operations), (Format::Bonus, 12));
        let q = facts(
            include_str!("../../examples/qualifications.csv"),
            &InputOptions::default(),
        );
        assert_eq!(q.format, Format::QualificationApi);
        assert_eq!(
            q.by_kind,
            BTreeMap::from([(Kind::Score, 4), (Kind::Revoke, 2)])
        );
        let w = facts(
            include_str!("../../examples/workers.csv"),
            &InputOptions {
                block_reason: Some("Answers did not match the task".into()),
                ..Default::default()
            },
        );
        assert_eq!(w.format, Format::WebsiteWorkers);
        assert_eq!((w.rows, w.operations), (5, 7));
        assert_eq!(
            w.by_kind,
            BTreeMap::from([
                (Kind::Score, 3),
                (Kind::Revoke, 2),
                (Kind::Block, 1),
                (Kind::Unblock, 1)
            ])
        );
        assert_eq!(w.ignored_columns.len(), 6);
    }

    #[test]
    fn kinds_parse_from_the_command_line_words() {
        assert_eq!(
            "Qualifications".parse::<BatchKind>(),
            Ok(BatchKind::Qualification)
        );
        assert_eq!("bonus".parse::<BatchKind>(), Ok(BatchKind::Bonus));
        assert!("score".parse::<BatchKind>().is_err());
    }
}
