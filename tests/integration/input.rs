//! The malformed-input corpus: each file is refused whole, with its line, and MTurk hears nothing.

use crate::support::*;

const HEADER: &str = "WorkerId,AssignmentId,BonusAmount,Reason\n";

/// (name, file bytes, text the error must contain)
fn corpus() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let row = |amount: &str| format!("{HEADER}A1B2C3,3XYZ,{amount},Thanks\n").into_bytes();
    let mut bad_utf8 = format!("{HEADER}A1B2C3,3XYZ,1.00,caf").into_bytes();
    bad_utf8.extend_from_slice(b"\xe9\n");
    let long_line = format!("{HEADER}A1B2C3,3XYZ,1.00,{}\n", "x".repeat(200_000)).into_bytes();
    vec![
        (
            "dollar sign",
            row("$1.00"),
            "line 2, column BonusAmount: amount \"$1.00\" has a currency sign",
        ),
        (
            "decimal comma",
            format!("{HEADER}A1B2C3,3XYZ,\"1,50\",Thanks\n").into_bytes(),
            "line 2, column BonusAmount: amount \"1,50\" has a comma",
        ),
        (
            "three decimals",
            row("1.234"),
            "line 2, column BonusAmount: amount \"1.234\" has more than 2 decimals",
        ),
        (
            "negative",
            row("-1"),
            "line 2, column BonusAmount: amount \"-1\" is negative",
        ),
        (
            "zero",
            row("0"),
            "line 2, column BonusAmount: amount \"0\" is zero",
        ),
        (
            "exponent",
            row("1e3"),
            "line 2, column BonusAmount: amount \"1e3\" is not a plain decimal number",
        ),
        (
            "bad worker",
            format!("{HEADER}B1B2C3,3XYZ,1.00,Thanks\n").into_bytes(),
            "line 2, column WorkerId",
        ),
        (
            "bad assignment",
            format!("{HEADER}A1B2C3,3xyz,1.00,Thanks\n").into_bytes(),
            "line 2, column AssignmentId",
        ),
        (
            "empty reason",
            format!("{HEADER}A1B2C3,3XYZ,1.00,\n").into_bytes(),
            "line 2, column Reason: reason is empty",
        ),
        (
            "duplicate",
            format!("{HEADER}A1B2C3,3XYZ,1.00,T\nA1B2C3,3XYZ,1.00,T\n").into_bytes(),
            "line 3: repeats line 2",
        ),
        ("empty file", Vec::new(), "the file is empty"),
        ("header only", HEADER.as_bytes().to_vec(), "no rows"),
        (
            "missing column",
            b"WorkerId,BonusAmount,Reason\nA1,1.00,T\n".to_vec(),
            "line 1: no assignment column",
        ),
        (
            "bad utf-8",
            bad_utf8,
            "line 2, column Reason: is not valid UTF-8",
        ),
        (
            "very long line",
            long_line,
            "line 2, column Reason: reason is 200000 characters long",
        ),
        (
            "ragged row",
            format!("{HEADER}A1B2C3,3XYZ,1.00,Thanks,extra\n").into_bytes(),
            "line 2: has 5 fields",
        ),
        (
            "one bad row among good",
            format!("{HEADER}A1,X1,1,T\nA2,X2,1,T\nA3,X3,1..0,T\nA4,X4,1,T\n").into_bytes(),
            "line 4, column BonusAmount",
        ),
        // Issue 6: the quote swallowed the rest of the file into line 3's reason.
        (
            "unclosed quote",
            format!("{HEADER}A1,X1,1,T\nA2,X2,1,\"Thanks\nA3,X3,1,T\nA4,X4,1,T\n").into_bytes(),
            "line 3, column Reason: a double quote opens here and is never closed",
        ),
        (
            "text after a closing quote",
            format!("{HEADER}A1,X1,1,\"Thanks \"great\" work\"\n").into_bytes(),
            "line 2, column Reason: has text after its closing double quote",
        ),
        (
            "NUL byte",
            format!("{HEADER}A1B2C3,3XYZ,1.00,Tha\0nks\n").into_bytes(),
            "line 2, column Reason: contains a NUL byte (character 4); this usually means the file is UTF-16",
        ),
        (
            "control character",
            format!("{HEADER}A1B2C3,3XYZ,1.00,\x1b[1mThanks\n").into_bytes(),
            "line 2, column Reason: contains the control character U+001B (character 1)",
        ),
        (
            "UTF-16 LE with BOM",
            utf16(
                &format!("{HEADER}A1B2C3,3XYZ,1.00,Thanks\n"),
                true,
                u16::to_le_bytes,
            ),
            "the file is UTF-16; save it as UTF-8 (CSV UTF-8 in Excel)",
        ),
        (
            "UTF-16 LE without BOM",
            utf16(
                &format!("{HEADER}A1B2C3,3XYZ,1.00,Thanks\n"),
                false,
                u16::to_le_bytes,
            ),
            "the file is UTF-16; save it as UTF-8 (CSV UTF-8 in Excel)",
        ),
        (
            "UTF-16 BE without BOM",
            utf16(
                &format!("{HEADER}A1B2C3,3XYZ,1.00,Thanks\n"),
                false,
                u16::to_be_bytes,
            ),
            "the file is UTF-16; save it as UTF-8 (CSV UTF-8 in Excel)",
        ),
        // Issue 8.
        (
            "short row",
            format!("{HEADER}A1B2C3,3XYZ,1.00\n").into_bytes(),
            "line 2: has 3 fields, but the header has 4; a value is missing",
        ),
        (
            "missing worker column",
            b"AssignmentId,BonusAmount,Reason\n3XYZ,1.00,T\n".to_vec(),
            "line 1: no worker column; name it WorkerId (also accepted:",
        ),
        (
            "semicolons without sep=",
            b"WorkerId;AssignmentId;BonusAmount;Reason\nA1;X1;1;T\n".to_vec(),
            "the file seems to be separated by semicolons",
        ),
        // Issue 7: qualification files are validated as thoroughly.
        (
            "misspelt revoke",
            b"WorkerId,QualificationTypeId,IntegerValue,Action\nA1,Panel,,Revok\n".to_vec(),
            "line 2, column Action: action \"Revok\" is neither grant nor revoke",
        ),
        (
            "lower-case worker",
            b"WorkerId,QualificationTypeId,IntegerValue\na1b2c3,Panel,5\n".to_vec(),
            "line 2, column WorkerId: worker ID \"a1b2c3\" is in lower case",
        ),
        (
            "grant and revoke of one worker",
            b"WorkerId,QualificationTypeId,IntegerValue,Action\nA1,Panel,5,\nA1,Panel,,revoke\n"
                .to_vec(),
            "line 3: conflicts with line 2",
        ),
        (
            "mistyped website column",
            b"Worker ID,CURRENT-Panel,UPDATE-Panel,UPDATE_Tagger\nA1,,5,5\n".to_vec(),
            "line 1, column UPDATE_Tagger: unknown column prefix",
        ),
        (
            "block without a reason",
            b"Worker ID,CURRENT BlockStatus,UPDATE-BlockStatus\nA1,Never Blocked,Block\n".to_vec(),
            "line 2, column UPDATE-BlockStatus: Block needs a reason",
        ),
        (
            "website score above 100",
            b"Worker ID,UPDATE-Panel\nA1,101\n".to_vec(),
            "line 2, column UPDATE-Panel: score 101 is more than 100",
        ),
    ]
}

fn utf16(text: &str, bom: bool, bytes: fn(u16) -> [u8; 2]) -> Vec<u8> {
    let mut v = if bom {
        bytes(0xFEFF).to_vec()
    } else {
        Vec::new()
    };
    v.extend(text.encode_utf16().flat_map(bytes));
    v
}

#[test]
fn every_malformed_file_is_refused_with_its_line_and_nothing_is_sent_or_journaled() {
    let emu = emulator(signed_config());
    let t = target_args(&emu);
    for (name, bytes, want) in corpus() {
        let s = Scratch::new();
        let path = s.path("bad.csv");
        std::fs::write(&path, &bytes).unwrap();
        let out = s.run(&args(&["run", path.to_str().unwrap()], &t));
        assert_eq!(out.code, 5, "{name}: {out:?}");
        assert!(
            out.stderr.contains(want),
            "{name}: expected {want:?} in {out:?}"
        );
        assert!(out.stderr.contains("nothing was sent"), "{name}: {out:?}");
        assert!(!s.journal().exists(), "{name}: a journal was written");
    }
    assert_eq!(
        emu.handle().stats().total_requests,
        0,
        "the emulator heard from payout"
    );
}

#[test]
fn all_problems_of_a_file_are_reported_at_once() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let text = format!("{HEADER}A1,X1,$1,T\nA2,X2,1.234,T\nB3,X3,1,T\nA4,X4,1,\n");
    let file = s.write("b.csv", &text);
    let out = s.run(&args(&["run", file.to_str().unwrap()], &target_args(&emu)));
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("4 problems found"), "{out:?}");
    for line in ["line 2,", "line 3,", "line 4,", "line 5,"] {
        assert!(out.stderr.contains(line), "{line}: {out:?}");
    }
}

#[test]
fn a_missing_file_is_an_input_error() {
    let s = Scratch::new();
    let out = s.run(&["run", s.path("nope.csv").to_str().unwrap(), "--emulator"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("cannot read the file"), "{out:?}");
}

#[test]
fn with_json_the_problems_are_also_data_on_stdout() {
    let s = Scratch::new();
    let file = s.write("b.csv", &format!("{HEADER}A1,X1,1.234,T\nA2,X2,1,\n"));
    let out = s.run(&["run", file.to_str().unwrap(), "--emulator", "--json"]);
    assert_eq!(out.code, 5, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0]["line"], 2);
    assert_eq!(problems[0]["column"], "BonusAmount");
    assert_eq!(problems[1]["line"], 3);
    assert_eq!(problems[1]["column"], "Reason");
}

#[test]
fn hints_fit_the_problem() {
    let s = Scratch::new();
    let short = s.write("short.csv", &format!("{HEADER}A1B2C3,3XYZ,1.00\n"));
    let out = s.run(&["run", short.to_str().unwrap(), "--emulator"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(
        out.stderr
            .contains("line 2: has 3 fields, but the header has 4"),
        "{out:?}"
    );
    assert!(
        !out.stderr.contains("double quotes"),
        "a short row gets no comma hint: {out:?}"
    );
    let no_worker = s.write("w.csv", "AssignmentId,BonusAmount,Reason\n3XYZ,1.00,T\n");
    let out = s.run(&["run", no_worker.to_str().unwrap(), "--emulator"]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("no worker column"), "{out:?}");
    assert!(
        !out.stderr.contains("--amount-column"),
        "the amount hint is for the amount column only: {out:?}"
    );
}

#[test]
fn a_file_after_an_excel_sep_line_is_paid() {
    let s = Scratch::new();
    let rows = rows(3);
    let file = s.write("sep.csv", &format!("sep=,\r\n{}", csv_text(&rows)));
    let out = s.run(&["run", file.to_str().unwrap(), "--emulator"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(&format!("paid     {:>6}", 3)),
        "{out:?}"
    );
    assert!(s.journal().exists());
}
