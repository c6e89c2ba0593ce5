//! A file's first bytes: refuses what is not UTF-8 text (UTF-16, UTF-32, workbooks) with the one
//! message that fixes it, and reads Excel's `sep=` line.
//!
//! Without this, a UTF-16 file reads as one unrecognisable header and four "no … column"
//! problems, and an Excel `sep=,` line reads as a header naming no column at all.

/// How much of the file is looked at before reading it as CSV.
pub(crate) const SNIFF_BYTES: usize = 4096;

/// Where the CSV proper starts, and how it is separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    /// Bytes to skip: a UTF-8 byte order mark and the `sep=` line.
    pub skip: usize,
    pub delimiter: u8,
    /// Whether a `sep=` line was read (it is line 1; the header is then line 2).
    pub sep_line: bool,
}

/// Looks at up to [`SNIFF_BYTES`] of the file's start (all of it if shorter). A refusal comes
/// with its line: 0 for the file as a whole, 1 for a bad `sep=` line.
pub(crate) fn sniff(prefix: &[u8]) -> Result<Start, (u64, String)> {
    if let Some(message) = not_utf8_text(prefix) {
        return Err((0, message));
    }
    let skip = if prefix.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    match sep_line(&prefix[skip..]).map_err(|m| (1, m))? {
        Some((len, delimiter)) => Ok(Start {
            skip: skip + len,
            delimiter,
            sep_line: true,
        }),
        None => Ok(Start {
            skip,
            delimiter: b',',
            sep_line: false,
        }),
    }
}

const SAVE_AS_UTF8: &str = "save it as UTF-8 (CSV UTF-8 in Excel)";

fn not_utf8_text(b: &[u8]) -> Option<String> {
    // UTF-32 first: its little-endian mark starts with UTF-16's.
    if b.starts_with(b"\xFF\xFE\x00\x00") || b.starts_with(b"\x00\x00\xFE\xFF") {
        return Some(format!("the file is UTF-32; {SAVE_AS_UTF8}"));
    }
    let utf16 = |detail: &str| {
        Some(format!(
            "the file is UTF-16; {SAVE_AS_UTF8}. (It is UTF-16 {detail}, as Excel's \"Unicode Text\" and some survey tools write it.)"
        ))
    };
    if b.starts_with(b"\xFF\xFE") {
        return utf16("little-endian with a byte order mark");
    }
    if b.starts_with(b"\xFE\xFF") {
        return utf16("big-endian with a byte order mark");
    }
    if b.starts_with(b"PK\x03\x04") {
        return Some(
            "the file is a zip archive, most likely an Excel workbook (.xlsx), not a CSV file; in Excel choose Save As → CSV UTF-8 (Comma delimited)".into(),
        );
    }
    if b.starts_with(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
        return Some(
            "the file is an Excel 97-2003 workbook (.xls), not a CSV file; in Excel choose Save As → CSV UTF-8 (Comma delimited)".into(),
        );
    }
    // Without a mark, UTF-16 shows as a zero byte in every other position: text in the header
    // is ASCII, whose UTF-16 form is the character and a zero. Real UTF-8 text has no zeros.
    let pairs = b.len() / 2;
    if pairs >= 2 {
        let zeros_at = |parity: usize| b.chunks_exact(2).filter(|pair| pair[parity] == 0).count();
        let (even, odd) = (zeros_at(0), zeros_at(1));
        let most = |n: usize| n * 10 >= pairs * 4;
        let few = |n: usize| n * 20 <= pairs;
        if most(odd) && few(even) {
            return utf16("little-endian without a byte order mark");
        }
        if most(even) && few(odd) {
            return utf16("big-endian without a byte order mark");
        }
    }
    None
}

/// Excel's `sep=X` first line: the length of the line (with its line end) and the delimiter.
fn sep_line(b: &[u8]) -> Result<Option<(usize, u8)>, String> {
    let quoted = b.first() == Some(&b'"');
    let start = usize::from(quoted);
    let Some(head) = b.get(start..start + 4) else {
        return Ok(None);
    };
    if !head.eq_ignore_ascii_case(b"sep=") {
        return Ok(None);
    }
    let bad = || {
        "looks like Excel's sep= line, but it should name one delimiter and nothing else: sep=, or sep=; or sep=| (or a tab after sep=)".to_string()
    };
    let mut i = start + 4;
    let delimiter = match (b.get(i), b.get(i + 1)) {
        (Some(b'\\'), Some(b't')) => {
            i += 2;
            b'\t'
        }
        (Some(&d), _) if d == b'\t' || (d.is_ascii_punctuation() && d != b'"') => {
            i += 1;
            d
        }
        _ => return Err(bad()),
    };
    if quoted {
        if b.get(i) != Some(&b'"') {
            return Err(bad());
        }
        i += 1;
    }
    // A spreadsheet that saved the line back may pad it with empty cells (`sep=;,,,`).
    while let Some(&c) = b.get(i) {
        match c {
            b'\n' => return Ok(Some((i + 1, delimiter))),
            b'\r' => {
                let len = if b.get(i + 1) == Some(&b'\n') {
                    i + 2
                } else {
                    i + 1
                };
                return Ok(Some((len, delimiter)));
            }
            b',' | b';' | b'\t' | b'|' | b' ' => i += 1,
            _ => return Err(bad()),
        }
    }
    if b.len() >= SNIFF_BYTES {
        return Err(bad());
    }
    Ok(Some((b.len(), delimiter)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(text: &str, bom: bool) -> Vec<u8> {
        let mut v = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
        v.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        v
    }

    fn utf16be(text: &str, bom: bool) -> Vec<u8> {
        let mut v = if bom { vec![0xFE, 0xFF] } else { Vec::new() };
        v.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        v
    }

    const TEXT: &str = "WorkerId,AssignmentId,BonusAmount,Reason\nA1,X1,1,thanks\n";

    #[test]
    fn utf16_with_and_without_a_byte_order_mark_in_either_byte_order_is_named() {
        for (bytes, detail) in [
            (utf16le(TEXT, true), "little-endian with a byte order mark"),
            (utf16le(TEXT, false), "little-endian without"),
            (utf16be(TEXT, true), "big-endian with a byte order mark"),
            (utf16be(TEXT, false), "big-endian without"),
        ] {
            let (line, e) = sniff(&bytes).unwrap_err();
            assert_eq!(line, 0);
            assert!(
                e.starts_with("the file is UTF-16; save it as UTF-8 (CSV UTF-8 in Excel)"),
                "{e}"
            );
            assert!(e.contains(detail), "{e}");
        }
    }

    #[test]
    fn utf32_and_workbooks_are_named() {
        assert!(
            sniff(b"\xFF\xFE\x00\x00W\x00\x00\x00")
                .unwrap_err()
                .1
                .contains("UTF-32")
        );
        assert!(sniff(b"PK\x03\x04rest").unwrap_err().1.contains(".xlsx"));
        assert!(
            sniff(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest")
                .unwrap_err()
                .1
                .contains(".xls")
        );
    }

    #[test]
    fn utf8_text_with_or_without_bom_is_fine() {
        assert_eq!(
            sniff(TEXT.as_bytes()).unwrap(),
            Start {
                skip: 0,
                delimiter: b',',
                sep_line: false
            }
        );
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice("Wörker,Ä\n".as_bytes());
        assert_eq!(sniff(&bom).unwrap().skip, 3);
        assert_eq!(sniff(b"").unwrap().skip, 0);
        // One stray NUL is a cell problem, reported with its line and column later.
        assert!(sniff(b"WorkerId,AssignmentId\nA1,\0X\n").is_ok());
    }

    #[test]
    fn excel_sep_lines_set_the_delimiter() {
        let d = |b: &[u8]| {
            sniff(b)
                .map(|s| (s.skip, s.delimiter, s.sep_line))
                .map_err(|(line, m)| format!("line {line}: {m}"))
        };
        assert_eq!(d(b"sep=,\nWorkerId"), Ok((6, b',', true)));
        assert_eq!(d(b"sep=;\r\nWorkerId"), Ok((7, b';', true)));
        assert_eq!(d(b"sep=\t\nWorkerId"), Ok((6, b'\t', true)));
        assert_eq!(d(b"sep=\\t\nWorkerId"), Ok((7, b'\t', true)));
        assert_eq!(d(b"SEP=|\rWorkerId"), Ok((6, b'|', true)));
        assert_eq!(d(b"\"sep=,\",,,\nWorkerId"), Ok((11, b',', true)));
        assert_eq!(d(b"sep=;,,,\nWorkerId"), Ok((9, b';', true)));
        assert_eq!(d(b"\xEF\xBB\xBFsep=,\nWorkerId"), Ok((9, b',', true)));
        assert_eq!(d(b"sep=,"), Ok((5, b',', true)));
        assert!(
            d(b"sep=\nWorkerId")
                .unwrap_err()
                .starts_with("line 1: looks like Excel's sep= line")
        );
        assert!(d(b"sep=,x\nWorkerId").unwrap_err().contains("sep= line"));
        assert!(d(b"sep=a\nWorkerId").unwrap_err().contains("sep= line"));
        // A header that merely starts with "sep" is a header.
        assert_eq!(d(b"separator,x\n"), Ok((0, b',', false)));
    }
}
