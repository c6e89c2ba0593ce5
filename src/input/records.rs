//! Streaming CSV records (RFC 4180, as Excel writes it) that know where they are: the true line
//! of every field, and whether a quote was closed. Memory is bounded by one record.
//!
//! A general CSV library reads a quote that is never closed as "the rest of the file is this
//! field", without complaint; here the field is flagged with the line its quote opened on.

use std::io::{self, BufRead};

/// The most a record may hold (its bytes, plus a little per field). A longer one is not stored:
/// only its size is kept, so a quote that swallows a huge file costs no more than this.
pub(crate) const MAX_RECORD_BYTES: u64 = 8 << 20;

/// What each field costs besides its bytes, for [`MAX_RECORD_BYTES`].
const FIELD_COST: u64 = 16;

/// Something wrong with a field's quoting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flaw {
    /// Text after the closing quote (`"abc"def`), found on this line.
    TextAfterQuote { line: u64 },
    /// The quote that opened the field was never closed: the file ended inside it.
    Unclosed,
}

#[derive(Debug, Clone)]
pub(crate) struct FieldInfo {
    end: usize,
    /// Whether the field was in double quotes (line breaks are then part of it).
    pub quoted: bool,
    /// The line the field starts on (where its quote opened, when quoted).
    pub line: u64,
    pub flaw: Option<Flaw>,
}

/// One record, reused from row to row.
#[derive(Debug, Default)]
pub(crate) struct Record {
    /// The line the record starts on.
    pub line: u64,
    buf: Vec<u8>,
    fields: Vec<FieldInfo>,
    size: u64,
    /// Fields read, stored or not.
    count: usize,
    /// Where the quote opened that the file ended inside of: (line, field index).
    unclosed: Option<(u64, usize)>,
}

impl Record {
    fn clear(&mut self) {
        self.buf.clear();
        self.fields.clear();
        self.size = 0;
        self.count = 0;
        self.unclosed = None;
    }

    fn push(&mut self, b: u8) {
        self.size += 1;
        if self.size <= MAX_RECORD_BYTES {
            self.buf.push(b);
        }
    }

    fn end_field(&mut self, f: &mut Pending, next_line: u64) {
        if f.flaw == Some(Flaw::Unclosed) {
            self.unclosed = Some((f.line, self.count));
        }
        self.count += 1;
        self.size += FIELD_COST;
        if self.size <= MAX_RECORD_BYTES {
            self.fields.push(FieldInfo {
                end: self.buf.len(),
                quoted: f.quoted,
                line: f.line,
                flaw: f.flaw,
            });
        }
        *f = Pending {
            start: self.buf.len(),
            quoted: false,
            line: next_line,
            flaw: None,
        };
    }

    /// How many fields the record has.
    pub(crate) fn len(&self) -> usize {
        self.fields.len()
    }

    /// The field's bytes as the file has them (unquoted, `""` undoubled, not trimmed).
    pub(crate) fn raw(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.fields[i - 1].end };
        &self.buf[start..self.fields[i].end]
    }

    /// The field's bytes without surrounding whitespace, as values are read.
    pub(crate) fn trimmed(&self, i: usize) -> &[u8] {
        self.raw(i).trim_ascii()
    }

    pub(crate) fn info(&self, i: usize) -> &FieldInfo {
        &self.fields[i]
    }

    /// Blank lines and rows of empty cells (`,,,`), which spreadsheets leave at the end.
    pub(crate) fn is_blank(&self) -> bool {
        (0..self.len()).all(|i| self.trimmed(i).is_empty())
    }

    /// The line and field index of a quote that was never closed (the file ended inside it),
    /// known even when the record was too long to store.
    pub(crate) fn unclosed(&self) -> Option<(u64, usize)> {
        self.unclosed
    }

    /// The record's size when it is too long to have been stored.
    pub(crate) fn oversize(&self) -> Option<u64> {
        (self.size > MAX_RECORD_BYTES).then_some(self.size)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a field, or after only spaces and tabs.
    FieldStart,
    Unquoted,
    Quoted,
    /// Just saw a `"` inside a quoted field: a closing quote or the first of `""`.
    QuoteInQuoted,
    /// After a closing quote.
    AfterQuote,
}

/// The field being read.
struct Pending {
    start: usize,
    quoted: bool,
    line: u64,
    flaw: Option<Flaw>,
}

pub(crate) struct Reader<R> {
    src: R,
    delimiter: u8,
    /// The line of the next byte.
    line: u64,
    prev_cr: bool,
    /// A record just ended at a `\r`: a `\n` right after it belongs to that line end.
    skip_lf: bool,
}

impl<R: BufRead> Reader<R> {
    /// Reads records from `src`, whose first byte is on line `first_line`.
    pub(crate) fn new(src: R, delimiter: u8, first_line: u64) -> Self {
        Reader {
            src,
            delimiter,
            line: first_line,
            prev_cr: false,
            skip_lf: false,
        }
    }

    /// Reads the next record into `rec`; false at the end of the file. A line end is `\n`,
    /// `\r\n` or a lone `\r`, inside quotes as outside.
    pub(crate) fn read(&mut self, rec: &mut Record) -> io::Result<bool> {
        rec.clear();
        let d = self.delimiter;
        let mut state = State::FieldStart;
        let mut started = false;
        let mut f = Pending {
            start: 0,
            quoted: false,
            line: self.line,
            flaw: None,
        };
        loop {
            let buf = match self.src.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                if !started {
                    return Ok(false);
                }
                if state == State::Quoted {
                    f.flaw = Some(Flaw::Unclosed);
                }
                rec.end_field(&mut f, self.line);
                return Ok(true);
            }
            let mut used = buf.len();
            let mut done = false;
            for (i, &b) in buf.iter().enumerate() {
                let line = self.line;
                match b {
                    b'\n' if self.prev_cr => self.prev_cr = false,
                    b'\n' => self.line += 1,
                    b'\r' => {
                        self.line += 1;
                        self.prev_cr = true;
                    }
                    _ => self.prev_cr = false,
                }
                if std::mem::take(&mut self.skip_lf) && b == b'\n' {
                    continue;
                }
                if !started {
                    started = true;
                    rec.line = line;
                    f.line = line;
                }
                let line_end = b == b'\n' || b == b'\r';
                match state {
                    State::FieldStart | State::Unquoted | State::AfterQuote
                        if b == d || line_end =>
                    {
                        rec.end_field(&mut f, line);
                        state = State::FieldStart;
                        if line_end {
                            self.skip_lf = b == b'\r';
                            done = true;
                        }
                    }
                    State::QuoteInQuoted if b == d || line_end => {
                        rec.end_field(&mut f, line);
                        state = State::FieldStart;
                        if line_end {
                            self.skip_lf = b == b'\r';
                            done = true;
                        }
                    }
                    State::FieldStart => match b {
                        b'"' => {
                            // Spaces before an opening quote are not part of the value.
                            rec.buf.truncate(f.start.min(rec.buf.len()));
                            f.quoted = true;
                            f.line = line;
                            state = State::Quoted;
                        }
                        b' ' | b'\t' => rec.push(b),
                        _ => {
                            rec.push(b);
                            state = State::Unquoted;
                        }
                    },
                    State::Unquoted => rec.push(b),
                    State::Quoted => {
                        if b == b'"' {
                            state = State::QuoteInQuoted;
                        } else {
                            rec.push(b);
                        }
                    }
                    State::QuoteInQuoted => match b {
                        b'"' => {
                            rec.push(b);
                            state = State::Quoted;
                        }
                        b' ' | b'\t' => state = State::AfterQuote,
                        _ => {
                            f.flaw = Some(Flaw::TextAfterQuote { line });
                            rec.push(b);
                            state = State::AfterQuote;
                        }
                    },
                    State::AfterQuote => {
                        if f.flaw.is_some() {
                            rec.push(b);
                        } else if b != b' ' && b != b'\t' {
                            f.flaw = Some(Flaw::TextAfterQuote { line });
                            rec.push(b);
                        }
                    }
                }
                if done {
                    used = i + 1;
                    break;
                }
            }
            self.src.consume(used);
            if done {
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record as (line, fields as text, per-field (line, quoted, flaw)).
    fn read_all(text: &[u8], delimiter: u8) -> Vec<(u64, Vec<String>, Vec<FieldInfo>)> {
        // A tiny buffer makes every state cross a buffer boundary somewhere.
        let mut r = Reader::new(io::BufReader::with_capacity(3, text), delimiter, 1);
        let mut rec = Record::default();
        let mut out = Vec::new();
        while r.read(&mut rec).unwrap() {
            let fields = (0..rec.len())
                .map(|i| String::from_utf8_lossy(rec.raw(i)).into_owned())
                .collect();
            let infos = (0..rec.len()).map(|i| rec.info(i).clone()).collect();
            out.push((rec.line, fields, infos));
        }
        out
    }

    fn texts(text: &str) -> Vec<(u64, Vec<String>)> {
        read_all(text.as_bytes(), b',')
            .into_iter()
            .map(|(l, f, _)| (l, f))
            .collect()
    }

    fn owned(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_rfc4180_with_true_line_numbers_for_every_line_end() {
        let got = texts("a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\n\"two\r\nlines\",z\rlast,\n");
        assert_eq!(
            got,
            vec![
                (1, owned(&["a", "b"])),
                (2, owned(&["x, y", "say \"hi\""])),
                (3, owned(&["two\r\nlines", "z"])),
                (5, owned(&["last", ""])),
            ]
        );
        // No line end at the end of the file, and empty lines read as one empty field.
        assert_eq!(
            texts("a\n\nb"),
            vec![(1, owned(&["a"])), (2, owned(&[""])), (3, owned(&["b"]))]
        );
        assert_eq!(texts(""), vec![]);
    }

    #[test]
    fn other_delimiters() {
        let got = read_all(b"a;\"b;c\";d\te, f\n", b';');
        assert_eq!(got[0].1, owned(&["a", "b;c", "d\te, f"]));
        let got = read_all(b"a\t\"b\tc\"\td\n", b'\t');
        assert_eq!(got[0].1, owned(&["a", "b\tc", "d"]));
    }

    #[test]
    fn an_unclosed_quote_is_flagged_at_the_line_it_opened() {
        let got = read_all(b"w,r\nA1,\"thanks\nA2,x\nA3,y\n", b',');
        assert_eq!(got.len(), 2);
        let (line, fields, infos) = &got[1];
        assert_eq!(*line, 2);
        assert_eq!(fields[1], "thanks\nA2,x\nA3,y\n");
        assert_eq!(infos[1].line, 2);
        assert_eq!(infos[1].flaw, Some(Flaw::Unclosed));
        assert!(infos[1].quoted);
        assert_eq!(infos[0].flaw, None);
    }

    #[test]
    fn text_after_a_closing_quote_is_flagged_and_spaces_around_quotes_are_not() {
        let got = read_all(b"\"say \"hi\" now\",b\n  \"x\"  ,\"y\"\n", b',');
        assert_eq!(got[0].2[0].flaw, Some(Flaw::TextAfterQuote { line: 1 }));
        assert_eq!(got[0].2[1].flaw, None);
        assert_eq!(got[1].1, owned(&["x", "y"]));
        assert!(got[1].2.iter().all(|f| f.flaw.is_none() && f.quoted));
        // A quote inside an unquoted value is just a character, as in Excel.
        assert_eq!(texts("ab\"c,d\n")[0].1, owned(&["ab\"c", "d"]));
    }

    #[test]
    fn fields_know_the_line_they_start_on() {
        let got = read_all(b"\"a\nb\nc\",d\n", b',');
        assert_eq!(got[0].2[0].line, 1);
        assert_eq!(got[0].2[1].line, 3);
    }

    #[test]
    fn a_record_longer_than_the_limit_is_measured_not_stored() {
        let mut text = b"\"".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES as usize + 10));
        let mut r = Reader::new(io::BufReader::new(&text[..]), b',', 1);
        let mut rec = Record::default();
        assert!(r.read(&mut rec).unwrap());
        assert!(rec.oversize().unwrap() > MAX_RECORD_BYTES);
        assert!(rec.buf.len() as u64 <= MAX_RECORD_BYTES);
        assert_eq!(rec.unclosed(), Some((1, 0)));
        assert!(!r.read(&mut rec).unwrap());
    }
}
