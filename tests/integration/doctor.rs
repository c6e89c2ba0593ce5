//! `payout setup`, `payout doctor`, `payout balance`, completions, the man page and every
//! subcommand's help, through the real binary against the emulator: each doctor finding with
//! the emulator answering that failure, and a stored key that a run then uses without its secret
//! ever leaving the credentials file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use payout::emulator::{AccountMode, EmulatorConfig};

use crate::production::Pty;
use crate::support::*;

/// `payout doctor` against `emu` as the sandbox, with `--json`; the object is checked against
/// the schema.
fn doctor(
    s: &Scratch,
    emu_url: &str,
    extra: &[&str],
    edit: impl FnOnce(&mut std::process::Command),
) -> (Outcome, serde_json::Value) {
    let mut a = vec![
        "doctor",
        "--endpoint-url",
        emu_url,
        "--testing-endpoint",
        "--json",
    ];
    a.extend_from_slice(extra);
    let mut cmd = s.payout(&a);
    edit(&mut cmd);
    let out: Outcome = cmd.output().expect("run payout").into();
    let v = json_output(&out);
    (out, v)
}

/// The check named `name` in doctor's JSON.
fn check<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {v:#}"))
}

/// Asserts that check `name` failed, that its ✗ line is printed, and that its fix says `fix`.
fn assert_fails(out: &Outcome, v: &serde_json::Value, name: &str, fix: &str) {
    let c = check(v, name);
    assert_eq!(c["status"], "fail", "{name}: {c:#}\n{out:?}");
    assert!(
        c["fix"].as_str().unwrap_or("").contains(fix),
        "{name}'s fix should say {fix:?}: {c:#}"
    );
    assert!(
        out.stderr.contains(&format!("✗ {name}")),
        "a ✗ line for {name}: {out:?}"
    );
    assert!(out.stderr.contains(fix), "the fix is printed: {out:?}");
    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(v["passed"], false);
    assert_eq!(v["error"]["kind"], "checks_failed");
}

fn assert_passes(v: &serde_json::Value, name: &str) {
    assert_eq!(check(v, name)["status"], "pass", "{name}: {v:#}");
}

#[test]
fn all_checks_pass_with_both_environments_and_a_healthy_private_journal() {
    let s = Scratch::new();
    let sandbox = emulator(signed_config());
    let production = emulator(signed_config());
    // A journal with a finished batch in it.
    let file = s.write("b.csv", &csv_text(&rows(3)));
    let run = s.run(&args(
        &["run", file.to_str().unwrap()],
        &target_args(&sandbox),
    ));
    assert_eq!(run.code, 0, "{run:?}");
    let before = sandbox.handle().stats().total_requests;
    let (out, v) = doctor(
        &s,
        &sandbox.url(),
        &[
            "--production",
            "--production-endpoint-url",
            &production.url(),
        ],
        |_| {},
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(v["passed"], true);
    assert_eq!(v["error"], serde_json::Value::Null);
    for name in [
        "credentials",
        "long-term key",
        "region",
        "sandbox",
        "production",
        "clock",
        "journal",
        "journal health",
    ] {
        assert_passes(&v, name);
        assert!(out.stderr.contains(&format!("✓ {name}")), "{out:?}");
    }
    let creds = check(&v, "credentials")["detail"].as_str().unwrap();
    assert!(creds.contains("environment"), "{creds}");
    assert!(creds.contains(&format!("…{}", &ACCESS_KEY[ACCESS_KEY.len() - 4..])));
    assert!(
        check(&v, "sandbox")["detail"]
            .as_str()
            .unwrap()
            .contains("$10,000.00")
    );
    let health = check(&v, "journal health")["detail"].as_str().unwrap();
    assert!(
        health.contains("schema") && health.contains("quick_check ok"),
        "{health}"
    );
    assert!(health.contains("no unfinished batch"), "{health}");
    // Doctor reads the balance once per environment, and nothing else.
    assert_eq!(sandbox.handle().stats().total_requests, before + 1);
    assert_eq!(
        production.handle().stats().calls.get("GetAccountBalance"),
        Some(&1)
    );
    assert_eq!(production.handle().stats().payments, 0);
    assert!(!out.stdout.contains(SECRET) && !out.stderr.contains(SECRET));
}

#[test]
fn production_is_checked_only_when_asked() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let (out, v) = doctor(&s, &emu.url(), &[], |_| {});
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(check(&v, "production")["status"], "skip");
    assert!(out.stderr.contains("add --production"), "{out:?}");
}

#[test]
fn an_account_not_linked_points_at_the_developer_page_of_that_environment() {
    let s = Scratch::new();
    let sandbox = emulator(EmulatorConfig {
        account: AccountMode::NotLinkedSandbox,
        ..signed_config()
    });
    let (out, v) = doctor(&s, &sandbox.url(), &[], |_| {});
    assert_fails(
        &out,
        &v,
        "sandbox",
        "https://requestersandbox.mturk.com/developer",
    );

    let ready = emulator(signed_config());
    let production = emulator(EmulatorConfig {
        account: AccountMode::NotLinked,
        ..signed_config()
    });
    let (out, v) = doctor(
        &s,
        &ready.url(),
        &[
            "--production",
            "--production-endpoint-url",
            &production.url(),
        ],
        |_| {},
    );
    assert_passes(&v, "sandbox");
    assert_fails(
        &out,
        &v,
        "production",
        "https://requester.mturk.com/developer",
    );
    let fix = check(&v, "production")["fix"].as_str().unwrap();
    assert!(!fix.contains("sandbox"), "{fix}");
}

#[test]
fn access_denied_says_to_attach_the_mturk_policy() {
    let s = Scratch::new();
    let emu = emulator(EmulatorConfig {
        account: AccountMode::AccessDenied,
        ..signed_config()
    });
    let (out, v) = doctor(&s, &emu.url(), &[], |_| {});
    assert_fails(
        &out,
        &v,
        "sandbox",
        "Attach the AmazonMechanicalTurkFullAccess policy",
    );
}

#[test]
fn a_wrong_secret_or_an_unknown_key_says_to_create_a_new_access_key() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let (out, v) = doctor(&s, &emu.url(), &[], |c| {
        c.env("AWS_SECRET_ACCESS_KEY", "not-the-secret-at-all-0000");
    });
    assert_fails(&out, &v, "sandbox", "create a new one in the IAM console");
    let (out, v) = doctor(&s, &emu.url(), &[], |c| {
        c.env("AWS_ACCESS_KEY_ID", "AKIDSOMEONEELSE000");
    });
    assert_fails(&out, &v, "sandbox", "create a new one in the IAM console");
    assert!(emu.handle().stats().bad_signatures >= 2);
}

#[test]
fn temporary_credentials_are_refused_before_any_call() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let (out, v) = doctor(&s, &emu.url(), &["--production"], |c| {
        c.env("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLETOKEN");
    });
    assert_fails(&out, &v, "long-term key", "Unset AWS_SESSION_TOKEN");
    let detail = check(&v, "long-term key")["detail"].as_str().unwrap();
    assert!(
        detail.contains("MTurk does not accept IAM role, temporary or federated credentials"),
        "{detail}"
    );
    assert_eq!(check(&v, "sandbox")["status"], "skip");
    assert_eq!(check(&v, "production")["status"], "skip");
    assert_eq!(emu.handle().stats().total_requests, 0, "no call was made");
}

#[test]
fn no_credentials_at_all_say_to_run_setup() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    let (out, v) = doctor(&s, &emu.url(), &[], |c| {
        c.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
    });
    assert_fails(
        &out,
        &v,
        "credentials",
        "payout setup --csv credentials.csv",
    );
    assert_eq!(emu.handle().stats().total_requests, 0);
}

#[test]
fn a_skewed_clock_is_found_from_the_answers_date_either_way() {
    let s = Scratch::new();
    for (skew, word) in [(3600, "behind"), (-3600, "ahead of")] {
        let emu = emulator(EmulatorConfig {
            clock_skew_secs: Some(skew),
            ..signed_config()
        });
        let (out, v) = doctor(&s, &emu.url(), &[], |_| {});
        assert_fails(&out, &v, "clock", "set the clock automatically (NTP)");
        let detail = check(&v, "clock")["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("1 h 0 min {word} the sandbox's")),
            "{detail}"
        );
        assert!(detail.contains("Date header"), "{detail}");
        // The sandbox refused the signature: its fix is the clock, said once.
        let sandbox = check(&v, "sandbox");
        assert_eq!(sandbox["status"], "fail");
        assert_eq!(sandbox["fix"], "Fix the clock first (see the clock check).");
    }
    // Ten minutes is inside the window: a pass, with advice.
    let emu = emulator(EmulatorConfig {
        clock_skew_secs: Some(600),
        ..signed_config()
    });
    let (out, v) = doctor(&s, &emu.url(), &[], |_| {});
    assert_eq!(out.code, 0, "{out:?}");
    let detail = check(&v, "clock")["detail"].as_str().unwrap();
    assert!(detail.contains("10 min behind"), "{detail}");
    assert!(detail.contains("NTP"), "{detail}");
}

#[test]
fn a_journal_others_can_read_fails_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let (emu, _file) = paid_batch(&s, 2);
    std::fs::set_permissions(s.journal(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (out, v) = doctor(&s, &emu.url(), &[], |_| {});
    assert_fails(&out, &v, "journal", "chmod 600");
    assert!(
        check(&v, "journal")["detail"]
            .as_str()
            .unwrap()
            .contains("(644)")
    );
    // Doctor only reads: the file is as it was.
    let mode = std::fs::metadata(s.journal()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    assert_passes(&v, "journal health");
}

#[test]
fn a_damaged_journal_fails_its_health_check() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    std::fs::write(s.journal(), b"this is not a database, just text").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.journal(), std::fs::Permissions::from_mode(0o600)).unwrap();
    let (out, v) = doctor(&s, &emu.url(), &[], |_| {});
    assert_fails(&out, &v, "journal health", "--journal PATH");
}

#[test]
fn balance_prints_the_balance_alone() {
    let s = Scratch::new();
    let emu = emulator(signed_config());
    emu.handle().set_balance(payout::money::Cents(123_456));
    let url = emu.url();
    let a = [
        "balance",
        "--production",
        "--endpoint-url",
        &url,
        "--testing-endpoint",
    ];
    let out = s.run(&a);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "$1,234.56\n");
    let mut j = a.to_vec();
    j.push("--json");
    let out = s.run(&j);
    let v = json_output(&out);
    assert_eq!(v["balance_cents"], 123_456);
    assert_eq!(v["target"], "production");
    let denied = emulator(EmulatorConfig {
        account: AccountMode::AccessDenied,
        ..signed_config()
    });
    let url = denied.url();
    let out = s.run(&[
        "balance",
        "--endpoint-url",
        &url,
        "--testing-endpoint",
        "--json",
    ]);
    let v = json_output(&out);
    assert_eq!(out.code, 6, "{out:?}");
    assert!(
        v["error"]["fix"]
            .as_str()
            .unwrap()
            .contains("AmazonMechanicalTurkFullAccess")
    );
}

// ---------------------------------------------------------------------------------------------
// setup
// ---------------------------------------------------------------------------------------------

/// A realistic key pair that is not the test credentials (so a leak of either is told apart).
const KEY_ID: &str = "AKIAPAYOUTSETUPTEST7";
const KEY_SECRET: &str = "setupSECRET/never-shown+Zq8w3Lk0pX2vB9nM";

fn iam_csv(dir: &Path) -> PathBuf {
    let p = dir.join("credentials.csv");
    std::fs::write(
        &p,
        format!(
            "\u{feff}User name,Password,Access key ID,Secret access key,Console login link\nresearcher,,{KEY_ID},{KEY_SECRET},https://123456789012.signin.aws.amazon.com/console\n"
        ),
    )
    .unwrap();
    p
}

/// `payout ARGS` with no AWS_* variables at all.
fn without_aws_env(s: &Scratch, a: &[&str]) -> Outcome {
    s.payout(a)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap()
        .into()
}

/// Every file under `dir`, recursively.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn setup_stores_credentials_csv_as_a_profile_that_run_then_uses_and_the_secret_stays_there() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new();
    let downloads = tempfile::tempdir().unwrap();
    let csv = iam_csv(downloads.path());
    let setup = without_aws_env(&s, &["setup", "--csv", csv.to_str().unwrap(), "--json"]);
    let v = json_output(&setup);
    assert_eq!(setup.code, 0, "{setup:?}");
    assert_eq!(v["profile"], "payout");
    assert_eq!(v["access_key_id_end"], "EST7");
    assert_eq!(v["root_key"], false);
    let creds = s.path(".aws/credentials");
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(&creds).unwrap(),
        format!("[payout]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {KEY_SECRET}\n")
    );

    // A run with no AWS_* variables and no default profile signs with the stored key.
    let emu = emulator(EmulatorConfig {
        credentials: Some((KEY_ID.into(), KEY_SECRET.into())),
        ..EmulatorConfig::default()
    });
    let file = s.write("b.csv", &csv_text(&rows(4)));
    let run = without_aws_env(
        &s,
        &args(&["run", file.to_str().unwrap()], &target_args(&emu)),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("Credentials: profile payout (~/.aws/credentials), access key …EST7"),
        "the banner says which credentials: {run:?}"
    );
    assert_paid_exactly_once(&emu.handle(), &rows(4));
    assert_eq!(emu.handle().stats().bad_signatures, 0);
    let doc = without_aws_env(
        &s,
        &["doctor", "--endpoint-url", &emu.url(), "--testing-endpoint"],
    );
    assert_eq!(doc.code, 0, "{doc:?}");
    assert!(
        doc.stderr
            .contains("✓ credentials    profile payout (~/.aws/credentials)"),
        "{doc:?}"
    );
    let status = s.run(&["status", "--json"]);
    json_output(&status);

    // The secret is in the credentials file and nowhere else: no output, no other file, not
    // the journal.
    for out in [&setup, &run, &doc, &status] {
        assert!(
            !out.stdout.contains(KEY_SECRET) && !out.stderr.contains(KEY_SECRET),
            "{out:?}"
        );
    }
    assert!(!contains(&journal_bytes(&s.journal()), KEY_SECRET));
    let files = all_files(s.dir.path());
    assert!(files.len() > 3, "{files:?}");
    for f in files {
        let holds = contains(&std::fs::read(&f).unwrap(), KEY_SECRET);
        assert_eq!(holds, f == creds, "{}", f.display());
    }
}

#[test]
fn setup_keeps_other_profiles_byte_for_byte_and_an_existing_profile_unless_force() {
    let s = Scratch::new();
    let downloads = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(s.path(".aws")).unwrap();
    let before = "# my keys\r\n[study]\r\naws_access_key_id=AKIDSTUDY\r\naws_secret_access_key = x  ; comment\r\n\r\n[payout]\naws_access_key_id = AKIAOLDOLDOLDOLDOLD1\naws_secret_access_key = old\n\n[zeta]\nregion = us-east-1";
    let creds = s.write(".aws/credentials", before);
    let csv = iam_csv(downloads.path());
    let out = without_aws_env(&s, &["setup", "--csv", csv.to_str().unwrap(), "--json"]);
    let v = json_output(&out);
    assert_eq!(out.code, 6, "{out:?}");
    assert_eq!(v["error"]["kind"], "unsafe_output");
    assert!(
        out.stderr
            .contains("has a profile payout already (access key …OLD1)"),
        "{out:?}"
    );
    assert!(out.stderr.contains("--force"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&creds).unwrap(),
        before,
        "untouched"
    );

    let out = without_aws_env(&s, &["setup", "--csv", csv.to_str().unwrap(), "--force"]);
    assert_eq!(out.code, 0, "{out:?}");
    let after = std::fs::read_to_string(&creds).unwrap();
    let new_section =
        format!("[payout]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {KEY_SECRET}\n");
    let (head, tail) = before.split_once("[payout]").unwrap();
    let tail = &tail[tail.find("[zeta]").unwrap()..];
    assert_eq!(after, format!("{head}{new_section}\n{tail}"));

    // A new profile name is added after the others, which stay as they were.
    let out = without_aws_env(
        &s,
        &["setup", "--csv", csv.to_str().unwrap(), "--profile", "lab"],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let added = std::fs::read_to_string(&creds).unwrap();
    assert!(added.starts_with(&after), "{added}");
    assert!(out.stderr.contains("--profile lab"), "{out:?}");
}

#[test]
fn a_rootkey_csv_is_stored_with_a_warning() {
    let s = Scratch::new();
    let downloads = tempfile::tempdir().unwrap();
    let root = downloads.path().join("rootkey.csv");
    std::fs::write(
        &root,
        format!("AWSAccessKeyId={KEY_ID}\r\nAWSSecretKey={KEY_SECRET}\r\n"),
    )
    .unwrap();
    let out = without_aws_env(&s, &["setup", "--csv", root.to_str().unwrap(), "--json"]);
    let v = json_output(&out);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(v["root_key"], true);
    assert!(
        out.stderr
            .contains("warning: this is the root user's access key"),
        "{out:?}"
    );
    assert!(out.stderr.contains("Create an IAM user"), "{out:?}");
    assert!(!out.stderr.contains(KEY_SECRET));
}

#[test]
fn setup_refuses_a_file_without_keys_and_a_temporary_key() {
    let s = Scratch::new();
    let downloads = tempfile::tempdir().unwrap();
    let bad = downloads.path().join("x.csv");
    std::fs::write(&bad, "WorkerId,AssignmentId\nA1,B2\n").unwrap();
    let out = without_aws_env(&s, &["setup", "--csv", bad.to_str().unwrap(), "--json"]);
    let v = json_output(&out);
    assert_eq!(out.code, 5, "{out:?}");
    assert_eq!(v["error"]["kind"], "invalid_input");
    let temp = downloads.path().join("t.csv");
    std::fs::write(
        &temp,
        format!("Access key ID,Secret access key\nASIAPAYOUTSETUPTEST7,{KEY_SECRET}\n"),
    )
    .unwrap();
    let out = without_aws_env(&s, &["setup", "--csv", temp.to_str().unwrap()]);
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("temporary"), "{out:?}");
    assert!(!out.stderr.contains(KEY_SECRET));
    assert!(!s.path(".aws/credentials").exists());
}

#[test]
fn setup_at_a_terminal_asks_and_never_echoes_the_secret() {
    let s = Scratch::new();
    let mut cmd = s.payout(&["setup"]);
    cmd.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let mut pty = Pty::spawn(cmd);
    pty.wait_for("AWS access key ID: ", Duration::from_secs(20));
    pty.type_line(KEY_ID);
    pty.wait_for("(not shown): ", Duration::from_secs(20));
    pty.type_line(KEY_SECRET);
    let (code, seen) = pty.finish(Duration::from_secs(20));
    assert_eq!(code, 0, "{seen}");
    assert!(seen.contains(KEY_ID), "the key ID is echoed: {seen}");
    assert!(!seen.contains(KEY_SECRET), "the secret is not: {seen}");
    assert!(seen.contains("Stored the access key …EST7"), "{seen}");
    let stored = std::fs::read_to_string(s.path(".aws/credentials")).unwrap();
    assert!(stored.contains(&format!("aws_secret_access_key = {KEY_SECRET}\n")));
}

// ---------------------------------------------------------------------------------------------
// help, completions, man
// ---------------------------------------------------------------------------------------------

#[test]
fn every_subcommand_has_an_example_and_shows_only_its_own_options() {
    use clap::CommandFactory;
    let s = Scratch::new();
    let cli = payout::cli::Cli::command();
    let names: Vec<String> = cli
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    assert!(names.len() >= 11, "{names:?}");
    for name in &names {
        let out = s.run(&[name, "--help"]);
        assert_eq!(out.code, 0, "{name}: {out:?}");
        assert!(
            out.stdout.contains("Example"),
            "{name} --help has no example:\n{}",
            out.stdout
        );
    }
    let top = s.run(&["--help"]);
    assert!(top.stdout.contains("payout setup --csv") && top.stdout.contains("payout doctor"));
    let emu = s.run(&["emulator", "--help"]).stdout;
    assert!(!emu.contains("--journal"), "{emu}");
    assert!(!s.run(&["status", "--help"]).stdout.contains("--quiet"));
    assert!(!s.run(&["cancel", "--help"]).stdout.contains("--yes"));
    let help = s.run(&["doctor", "--help"]).stdout;
    let doctor = help.split("Examples:").next().unwrap();
    for absent in [
        "--emulator",
        "--sandbox",
        "--concurrency",
        "--production-endpoint-url",
    ] {
        assert!(!doctor.contains(absent), "doctor shows {absent}:\n{doctor}");
    }
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line_definition() {
    let s = Scratch::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = s.run(&["completions", shell]);
        assert_eq!(out.code, 0, "{out:?}");
        for word in ["doctor", "setup", "max-bonus", "skip-rehearsal"] {
            assert!(out.stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    let man = s.run(&["man"]);
    assert_eq!(man.code, 0, "{man:?}");
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH payout"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    assert!(man.stdout.contains("doctor") && man.stdout.contains("setup"));
    let bad = s.run(&["completions", "tcsh"]);
    assert_eq!(bad.code, 2, "{bad:?}");
}
