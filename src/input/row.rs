//! One record being validated: its cells decoded and trimmed, every failure recorded at its
//! line and column; and the cell checks the file formats share (worker IDs, reasons, control
//! characters).

use crate::ids::WorkerId;

use super::columns::Header;
use super::problems::Problems;
use super::records::Record;

/// Longest reason MTurk accepts, in characters.
pub const MAX_REASON_CHARS: usize = 4096;

/// A record under validation. Cells that already failed the file-wide checks (a control
/// character) read as absent, so each cell is reported once.
pub(crate) struct RowCtx<'a> {
    pub line: u64,
    pub rec: &'a Record,
    pub header: &'a Header,
    pub problems: &'a mut Problems,
    /// Cells reported already (by index).
    pub bad: &'a [bool],
}

impl<'a> RowCtx<'a> {
    /// Records a problem in cell `idx` (at the line the cell starts on).
    pub(crate) fn problem(&mut self, idx: usize, message: impl FnOnce() -> String) {
        let line = self.rec.info(idx).line;
        self.problems
            .add(line, Some((idx, &self.header.names[idx])), message);
    }

    /// Records a problem about the row as a whole.
    pub(crate) fn row_problem(&mut self, message: impl FnOnce() -> String) {
        self.problems.add(self.line, None, message);
    }

    /// The cell's text, trimmed; `None` (with a problem recorded) when it is not UTF-8 or
    /// was reported already.
    pub(crate) fn text(&mut self, idx: usize) -> Option<&'a str> {
        if self.bad[idx] {
            return None;
        }
        let rec: &'a Record = self.rec;
        match std::str::from_utf8(rec.trimmed(idx)) {
            Ok(text) => Some(text),
            Err(e) => {
                self.problem(idx, || {
                    format!(
                        "is not valid UTF-8 (bad byte at position {}); save the file as UTF-8",
                        e.valid_up_to() + 1
                    )
                });
                None
            }
        }
    }

    /// Decodes the cell and parses it; a failure becomes a problem at this cell, and `None`.
    pub(crate) fn parse<T>(
        &mut self,
        idx: usize,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.text(idx)?;
        match parse(text) {
            Ok(v) => Some(v),
            Err(message) => {
                self.problem(idx, || message);
                None
            }
        }
    }
}

/// A worker ID as MTurk writes them. Lower case is refused, not corrected: a worker ID that
/// went through a lower-casing tool may have been mangled in other ways too.
pub(crate) fn parse_worker(text: &str) -> Result<WorkerId, String> {
    WorkerId::parse(text).map_err(|e| {
        let upper = text.to_ascii_uppercase();
        if upper != text && WorkerId::parse(&upper).is_ok() {
            format!(
                "worker ID {text:?} is in lower case; MTurk worker IDs are capital letters and digits ({upper})"
            )
        } else {
            format!("worker ID {text:?} {e}")
        }
    })
}

/// A reason MTurk shows the worker: the row's own, or `default` for an empty cell; 1–4,096
/// characters.
pub(crate) fn required_reason(text: &str, default: Option<&str>) -> Result<String, String> {
    let reason = if text.is_empty() {
        default.unwrap_or_default()
    } else {
        text
    };
    if reason.trim().is_empty() {
        return Err(
            "reason is empty; MTurk shows it to the worker, so write one (or give --reason TEXT)"
                .into(),
        );
    }
    reason_length(reason)?;
    Ok(reason.to_owned())
}

/// An optional reason (revokes, unblocks): the row's own, else `default`, else none.
pub(crate) fn optional_reason(text: &str, default: Option<&str>) -> Result<Option<String>, String> {
    let reason = if text.is_empty() { default } else { Some(text) };
    match reason.map(str::trim) {
        None | Some("") => Ok(None),
        Some(r) => {
            reason_length(r)?;
            Ok(Some(r.to_owned()))
        }
    }
}

fn reason_length(reason: &str) -> Result<(), String> {
    let chars = reason.chars().count();
    if chars > MAX_REASON_CHARS {
        return Err(format!(
            "reason is {chars} characters long; MTurk accepts at most {MAX_REASON_CHARS}"
        ));
    }
    Ok(())
}

/// The first control character in a field, as (character position from 1, the character),
/// except tab, and line breaks inside a quoted field. Control characters are invisible in most
/// editors and spreadsheets; in a file they mostly mean it is not UTF-8 text at all.
pub(crate) fn control_char(raw: &[u8], quoted: bool) -> Option<(usize, char)> {
    let mut chars = 0;
    for (i, &b) in raw.iter().enumerate() {
        // Count characters by their first byte (continuation bytes are 10xxxxxx).
        if b & 0xC0 != 0x80 {
            chars += 1;
        }
        let bad = match b {
            b'\t' => false,
            b'\r' | b'\n' => !quoted,
            0..=0x1F | 0x7F => true,
            // U+0080..U+009F (C1 controls) are C2 80..C2 9F in UTF-8.
            0x80..=0x9F => i > 0 && raw[i - 1] == 0xC2,
            _ => false,
        };
        if bad {
            let c = if b >= 0x80 {
                char::from_u32(u32::from(b)).unwrap_or('\u{FFFD}')
            } else {
                char::from(b)
            };
            return Some((chars, c));
        }
    }
    None
}

/// What to say about a control character found by [`control_char`].
pub(crate) fn control_message(at: usize, c: char) -> String {
    if c == '\0' {
        format!(
            "contains a NUL byte (character {at}); this usually means the file is UTF-16 or not a text file at all: open it and save it as CSV UTF-8"
        )
    } else {
        format!(
            "contains the control character U+{:04X} (character {at}), invisible in most editors; delete it (tabs are fine, and line breaks inside double quotes)",
            u32::from(c)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_ids_in_lower_case_are_refused_with_the_capital_form() {
        assert_eq!(
            parse_worker("a1b2c3").unwrap_err(),
            "worker ID \"a1b2c3\" is in lower case; MTurk worker IDs are capital letters and digits (A1B2C3)"
        );
        assert!(
            parse_worker("B2")
                .unwrap_err()
                .starts_with("worker ID \"B2\" must start with the letter A")
        );
        assert_eq!(parse_worker("A1B2").unwrap().as_str(), "A1B2");
    }

    #[test]
    fn control_characters_are_found_with_their_position() {
        assert_eq!(control_char(b"ok\tfine", false), None);
        assert_eq!(control_char(b"two\nlines", true), None);
        assert_eq!(control_char(b"a\0b", false), Some((2, '\0')));
        assert_eq!(control_char("é\x07".as_bytes(), false), Some((2, '\x07')));
        assert_eq!(control_char(b"del\x7f", false), Some((4, '\x7f')));
        assert_eq!(
            control_char("x\u{85}".as_bytes(), false),
            Some((2, '\u{85}'))
        );
        // A continuation byte in that range is part of another character (U+00E9 is C3 A9,
        // U+0100 is C4 80).
        assert_eq!(control_char("Ā".as_bytes(), false), None);
        assert!(control_message(3, '\0').contains("UTF-16"));
        assert!(control_message(3, '\x1b').starts_with("contains the control character U+001B"));
    }

    #[test]
    fn reasons() {
        assert_eq!(required_reason("", Some("d")).unwrap(), "d");
        assert!(
            required_reason(" ", None)
                .unwrap_err()
                .starts_with("reason is empty")
        );
        assert_eq!(optional_reason("", None), Ok(None));
        assert_eq!(optional_reason("", Some("d")), Ok(Some("d".into())));
        assert!(
            optional_reason(&"x".repeat(4097), None)
                .unwrap_err()
                .starts_with("reason is 4097 characters long")
        );
    }
}
