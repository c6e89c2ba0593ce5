//! `payout setup --prolific` and `payout doctor --prolific` through the real binary: the token
//! stored 0600 in payout's config directory and shown by its last four characters only; an
//! existing token kept without --force; the doctor passing against the Prolific emulator with a
//! good token and failing, with the fix named, on a refused token or a token file others read.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use payout::emulator::prolific::{BackgroundProlific, ProlificConfig, ProlificSeed};

use crate::support::*;

/// Distinctive, so that a leak is found by a plain search; the emulator accepts it.
const TOKEN: &str = "pRoLiFiC-setup-test-token-never-print-9c1e";
const TOKEN_END: &str = "9c1e";

/// `payout ARGS` with payout's config directory in the scratch and no PROLIFIC_TOKEN.
fn payout(s: &Scratch, args: &[&str]) -> Command {
    let mut cmd = s.payout(args);
    cmd.env("XDG_CONFIG_HOME", s.path("config"));
    cmd
}

fn token_file(s: &Scratch) -> PathBuf {
    s.path("config").join("payout").join("prolific-token")
}

/// Runs `payout setup --prolific EXTRA` with `input` piped to it; no output may hold `secret`.
fn setup(s: &Scratch, input: &str, extra: &[&str], secret: &str) -> Outcome {
    let mut args = vec!["setup", "--prolific"];
    args.extend_from_slice(extra);
    let mut child = payout(s, &args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn payout");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write the token");
    let out = Outcome::from(child.wait_with_output().expect("run payout"));
    assert!(
        !out.stdout.contains(secret) && !out.stderr.contains(secret),
        "the token was printed: {out:?}"
    );
    out
}

fn emulator(workspaces: &[&str]) -> (BackgroundProlific, Vec<String>) {
    let mut seed = ProlificSeed::new();
    seed.only_token(TOKEN);
    let ids = workspaces
        .iter()
        .map(|t| seed.workspace(t, "GBP", 123_456))
        .collect();
    let emu = BackgroundProlific::start(seed.build(), ProlificConfig::default())
        .expect("start the Prolific emulator");
    (emu, ids)
}

fn doctor(s: &Scratch, url: &str, extra: &[&str], env_token: Option<&str>) -> Outcome {
    let mut args = vec![
        "doctor",
        "--prolific",
        "--endpoint-url",
        url,
        "--testing-endpoint",
    ];
    args.extend_from_slice(extra);
    let mut cmd = payout(s, &args);
    if let Some(t) = env_token {
        cmd.env("PROLIFIC_TOKEN", t);
    }
    let out = Outcome::from(cmd.output().expect("run payout"));
    for secret in [Some(TOKEN), env_token].into_iter().flatten() {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "the token was printed: {out:?}"
        );
    }
    out
}

#[test]
fn setup_stores_the_token_private_and_shows_only_its_last_four_characters() {
    let s = Scratch::new();
    let out = setup(&s, &format!("  {TOKEN}\n"), &[], TOKEN);
    assert_eq!(out.code, 0, "{out:?}");
    let file = token_file(&s);
    let meta = std::fs::metadata(&file).expect("the token file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{out:?}");
    let dir = std::fs::metadata(file.parent().unwrap()).unwrap();
    assert_eq!(
        dir.permissions().mode() & 0o077,
        0,
        "the directory is private"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim_end(), TOKEN);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains(&format!("…{TOKEN_END}")), "{out:?}");
    assert!(all.contains("payout doctor --prolific"), "{out:?}");
    assert!(all.contains("PROLIFIC_TOKEN"), "{out:?}");

    // A second token does not replace it without --force.
    let other = "another-prolific-token-5b7d";
    let out = setup(&s, &format!("{other}\n"), &[], other);
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("--force"), "{out:?}");
    assert!(out.stderr.contains(&format!("…{TOKEN_END}")), "{out:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim_end(), TOKEN);

    let out = setup(&s, &format!("{other}\n"), &["--force", "--json"], other);
    assert_eq!(out.code, 0, "{out:?}");
    let v = json_output(&out);
    assert_eq!(v["token_end"], "5b7d", "{out:?}");
    assert_eq!(v["replaced"], true, "{out:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim_end(), other);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn setup_refuses_an_empty_token_or_one_with_a_space() {
    let s = Scratch::new();
    for (input, why) in [
        (" \n", "no token"),
        ("", "no token"),
        ("pRoLiFiC secret-half\n", "space"),
    ] {
        let out = setup(&s, input, &[], "secret-half");
        assert_eq!(out.code, 5, "{input:?}: {out:?}");
        assert!(out.stderr.contains(why), "{input:?}: {out:?}");
        assert!(!token_file(&s).exists(), "{input:?}: nothing is stored");
    }
}

#[test]
fn doctor_passes_with_a_good_token_from_the_file_or_the_environment() {
    let (emu, ws) = emulator(&["Lab"]);
    let s = Scratch::new();
    let url = emu.url();
    assert_eq!(setup(&s, TOKEN, &[], TOKEN).code, 0);

    let out = doctor(&s, &url, &["--json"], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("All checks passed"), "{out:?}");
    assert!(
        out.stderr.contains(&format!("…{TOKEN_END} from")),
        "{out:?}"
    );
    assert!(out.stderr.contains("prolific-token"), "{out:?}");
    assert!(out.stderr.contains(&ws[0]), "the workspace: {out:?}");
    assert!(out.stderr.contains("£1,234.56 available"), "{out:?}");
    let v = json_output(&out);
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for want in [
        "token",
        "token file",
        "prolific",
        "workspace",
        "balance",
        "journal",
    ] {
        assert!(names.contains(&want), "{want}: {names:?}");
    }
    assert_eq!(v["passed"], true);

    // PROLIFIC_TOKEN takes precedence over the file.
    std::fs::remove_file(token_file(&s)).unwrap();
    let out = doctor(&s, &url, &[], Some(TOKEN));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("from PROLIFIC_TOKEN"), "{out:?}");
}

#[test]
fn doctor_fails_with_the_fix_for_a_refused_token_or_a_token_file_others_read() {
    let (emu, _) = emulator(&["Lab"]);
    let s = Scratch::new();
    let url = emu.url();

    // A token Prolific refuses (401): the token's fix, and nothing after it is asked.
    let bad = "not-the-token-0000-refused-3a3a";
    let out = doctor(&s, &url, &[], Some(bad));
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("✗ prolific"), "{out:?}");
    assert!(out.stderr.contains("HTTP 401"), "{out:?}");
    assert!(
        out.stderr.contains("Workspace settings → API token"),
        "TOKEN_FIX: {out:?}"
    );
    assert!(out.stderr.contains("failed: prolific"), "{out:?}");

    // No token at all: named, with the fix, and nothing sent.
    let out = doctor(&s, &url, &[], None);
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("✗ token"), "{out:?}");
    assert!(out.stderr.contains("payout setup --prolific"), "{out:?}");

    // A good token in a file others may read: the chmod fix.
    assert_eq!(setup(&s, TOKEN, &[], TOKEN).code, 0);
    let file = token_file(&s);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = doctor(&s, &url, &[], None);
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("✗ token file"), "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("chmod 600 '{}'", file.display())),
        "{out:?}"
    );
}

#[test]
fn doctor_lists_several_workspaces_and_checks_the_one_given() {
    let (emu, ws) = emulator(&["Lab A", "Lab B"]);
    let s = Scratch::new();
    let url = emu.url();
    let out = doctor(&s, &url, &[], Some(TOKEN));
    assert_eq!(out.code, 6, "{out:?}");
    assert!(out.stderr.contains("✗ workspace"), "{out:?}");
    assert!(
        out.stderr.contains(&ws[0]) && out.stderr.contains(&ws[1]),
        "{out:?}"
    );
    assert!(out.stderr.contains("--workspace ID"), "{out:?}");

    let out = doctor(&s, &url, &["--workspace", &ws[1]], Some(TOKEN));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("Lab B"), "{out:?}");
}
