//! Credentials files that are not what `payout setup` expects: refused without quoting anything
//! read from them (a header that is really a key, swapped or mislabelled columns).

use crate::support::*;

/// Looks like an access key ID; distinctive, so a leak is found by a plain search.
const KEY_ID: &str = "AKIAQWERTYUIOPLEAKY7";
/// Looks like a secret access key.
const KEY_SECRET: &str = "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";

fn setup_csv(s: &Scratch, name: &str, text: &str, json: bool) -> Outcome {
    let file = s.write(name, text);
    let mut a = vec!["setup", "--csv", file.to_str().unwrap()];
    if json {
        a.push("--json");
    }
    s.payout(&a)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap()
        .into()
}

fn assert_nothing_quoted(out: &Outcome, values: &[&str]) {
    for v in values {
        // Any 8 characters of a value in a row are a leak.
        for w in v.as_bytes().windows(8) {
            let w = std::str::from_utf8(w).unwrap();
            assert!(
                !out.stdout.contains(w) && !out.stderr.contains(w),
                "{w:?} (from {v:?}) was quoted: {out:?}"
            );
        }
    }
}

#[test]
fn setup_never_quotes_what_a_malformed_credentials_file_holds() {
    let s = Scratch::new();
    let cases = [
        // The header row deleted: the first line is the key itself.
        (
            "no-header.csv",
            format!("{KEY_ID},{KEY_SECRET}\n"),
            "looks like a key",
        ),
        // The user name and both key columns present, but the header row lost.
        (
            "no-header-iam.csv",
            format!("researcher,,{KEY_ID},{KEY_SECRET},https://x\n"),
            "looks like a key",
        ),
        // Columns swapped under their labels.
        (
            "swapped.csv",
            format!("Access key ID,Secret access key\n{KEY_SECRET},{KEY_ID}\n"),
            "does not look like an access key ID",
        ),
        // Mislabelled columns.
        (
            "mislabelled.csv",
            format!("Key ID,Secret key\n{KEY_ID},{KEY_SECRET}\n"),
            "no `Access key ID`",
        ),
        // Two keys, the user names holding what were secrets.
        (
            "two.csv",
            format!(
                "User name,Access key ID,Secret access key\n{KEY_SECRET},{KEY_ID},{KEY_SECRET}\n{KEY_ID},{KEY_ID},{KEY_SECRET}\n"
            ),
            "2 access keys",
        ),
    ];
    for (name, text, says) in cases {
        for json in [false, true] {
            let out = setup_csv(&s, name, &text, json);
            assert_eq!(out.code, 5, "{name}: {out:?}");
            let all = format!("{}{}", out.stdout, out.stderr);
            assert!(all.contains(says), "{name}: expected {says:?}: {out:?}");
            assert_nothing_quoted(&out, &[KEY_ID, KEY_SECRET]);
            if json {
                json_output(&out);
            }
        }
    }
    assert!(!s.path(".aws/credentials").exists());
}
