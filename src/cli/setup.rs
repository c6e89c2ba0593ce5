//! `payout setup`: stores an IAM user's access key as a profile of the AWS shared credentials
//! file, as `aws configure import` does — from the IAM console's `credentials.csv` (or an old
//! `rootkey.csv`), or typed at a prompt that does not echo the secret. The secret goes into that
//! file only: never to output, a message, or any other file.

use std::io::{BufRead, IsTerminal, Write as _};
use std::path::{Path, PathBuf};

use clap::Args;

use super::prolific::token_path;
use super::{Ctx, Outcome};
use crate::error::{Exit, Failure, FailureKind};
use crate::platform::aws_files::{
    SETUP_PROFILE, credentials_path, display_path, sections, where_defined, with_profile,
};
use crate::platform::prolific::{TOKEN_FIX, Token};

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  payout setup --csv ~/Downloads/credentials.csv   the file the IAM console offers when it creates an access key\n  payout setup                                     type the access key ID and the secret (the secret is not shown)\n  payout setup --csv new_credentials.csv --force   replace the key stored before\n  payout setup --prolific                          type a Prolific API token (not shown)\n\nThe key is stored as the profile `payout` in ~/.aws/credentials (or $AWS_SHARED_CREDENTIALS_FILE),\nreadable only by you. `payout doctor` then checks it against the sandbox."
)]
pub struct SetupArgs {
    /// The IAM console's credentials.csv (or an old rootkey.csv). Without it, payout asks.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// The profile to write.
    #[arg(long, value_name = "NAME", default_value = SETUP_PROFILE)]
    profile: String,
    /// Store a Prolific API token instead (asked without echo, or one line from a pipe), in
    /// payout's config directory, readable only by you.
    #[arg(long, conflicts_with_all = ["csv", "profile"])]
    prolific: bool,
    /// Replace the profile (or, with --prolific, the token) stored before.
    #[arg(long)]
    force: bool,
    /// Write one JSON object to stdout at exit.
    #[arg(long)]
    pub json: bool,
}

/// An access key as read. `Debug` by hand so that the secret never reaches a log.
struct AccessKey {
    id: String,
    secret: String,
    /// From a rootkey.csv: the root user's key.
    root: bool,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<secret>")
            .field("root", &self.root)
            .finish()
    }
}

use crate::platform::key_id_end as key_end;

/// Reads a `credentials.csv` (columns `Access key ID` and `Secret access key`, maybe `User
/// name`, `Password`, `Console login link`) or a `rootkey.csv` (`AWSAccessKeyId=...` and
/// `AWSSecretKey=...` lines). Messages never quote the secret.
fn parse_key_file(text: &str) -> Result<AccessKey, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.trim_start().strip_prefix('='))
            .map(|v| v.trim().to_owned())
    };
    if let Some(id) = field("AWSAccessKeyId") {
        let secret =
            field("AWSSecretKey").ok_or("it has AWSAccessKeyId but no AWSSecretKey line")?;
        return Ok(AccessKey {
            id,
            secret,
            root: true,
        });
    }
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("it is not a readable CSV file{}", csv_place(&e)))?
        .clone();
    let norm = |h: &str| {
        h.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let column = |want: &str| headers.iter().position(|h| norm(h) == want);
    let (Some(id_col), Some(secret_col)) = (column("accesskeyid"), column("secretaccesskey"))
    else {
        // What the first line holds may be the key itself (a header row deleted): it is
        // described, never quoted.
        let looks_like_key = headers
            .iter()
            .any(|h| looks_like_key_id(h) || looks_like_secret(h));
        return Err(if looks_like_key {
            format!(
                "its first line ({} fields) looks like a key, not a header: the header row `Access key ID,Secret access key` is missing",
                headers.len()
            )
        } else {
            format!(
                "it has no `Access key ID` and `Secret access key` columns (its first line has {} fields, none named so)",
                headers.len()
            )
        });
    };
    let mut keys = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| format!("it is not a readable CSV file{}", csv_place(&e)))?;
        let line = record.position().map_or(0, csv::Position::line);
        let get = |i: usize| record.get(i).unwrap_or("").to_owned();
        if get(id_col).is_empty() && get(secret_col).is_empty() {
            continue;
        }
        keys.push((
            line,
            AccessKey {
                id: get(id_col),
                secret: get(secret_col),
                root: false,
            },
        ));
    }
    match keys.len() {
        0 => Err("it has a header but no access key".into()),
        1 => Ok(keys.remove(0).1),
        // Rows are named by line: a user name is read from the file too, and a mislabelled
        // file may hold a secret under it.
        n => Err(format!(
            "it has {n} access keys (on lines {}); keep only the row of the one payout should use",
            keys.iter()
                .map(|(line, _)| line.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Where the CSV reader stopped, without quoting what it read there.
fn csv_place(e: &csv::Error) -> String {
    e.position()
        .map(|p| format!(" (line {})", p.line()))
        .unwrap_or_default()
}

/// The shape AWS gives access key IDs: 16 to 128 capital letters and digits, starting with A.
fn looks_like_key_id(v: &str) -> bool {
    (16..=128).contains(&v.len())
        && v.starts_with('A')
        && v.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// A long token without spaces: a secret access key, or something that could be one.
fn looks_like_secret(v: &str) -> bool {
    v.len() >= 30 && !v.chars().any(char::is_whitespace)
}

/// What `value` is made of, to say why it is not an access key ID without quoting it.
fn shape(value: &str) -> String {
    let mut kinds = Vec::new();
    if value.chars().any(|c| c.is_ascii_lowercase()) {
        kinds.push("lower-case letters");
    }
    if value.chars().any(|c| c.is_whitespace()) {
        kinds.push("spaces");
    }
    if value
        .chars()
        .any(|c| !c.is_ascii_alphanumeric() && !c.is_whitespace())
    {
        kinds.push("other symbols");
    }
    let n = value.chars().count();
    let mut text = format!("{n} character{}", if n == 1 { "" } else { "s" });
    if !kinds.is_empty() {
        text.push_str(&format!(", with {}", kinds.join(" and ")));
    }
    text
}

/// Checks the shapes AWS gives keys; says what is wrong without quoting the secret.
fn check_key(key: &AccessKey) -> Result<(), Failure> {
    let bad = |what: String, fix: &str| {
        Failure::new(FailureKind::InvalidInput, what).with_fix(fix.to_owned())
    };
    if !looks_like_key_id(&key.id) {
        // The value may be the secret (columns swapped): described, never quoted.
        let hint = if looks_like_secret(&key.id) {
            "; it looks like a secret access key — are the columns swapped?"
        } else {
            ""
        };
        return Err(bad(
            format!(
                "the value under `Access key ID` does not look like an access key ID ({}; they are 16 or more capital letters and digits, such as AKIA followed by 16){hint}",
                shape(&key.id)
            ),
            "Copy the access key ID from the IAM console (Users → your user → Security credentials), or give the credentials.csv it offered with --csv.",
        ));
    }
    if key.id.starts_with("ASIA") {
        return Err(bad(
            format!(
                "the access key …{} is a temporary one (ASIA…): MTurk does not accept IAM role, temporary or federated credentials",
                key_end(&key.id)
            ),
            "Create an access key for an IAM user with the AmazonMechanicalTurkFullAccess policy (IAM console → Users → Security credentials → Create access key), and give payout that one.",
        ));
    }
    if key.secret.is_empty()
        || key.secret.len() < 16
        || key
            .secret
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad(
            "the secret access key is missing, too short, or contains a space".into(),
            "Copy the secret access key exactly as the IAM console showed it (it is shown once; if it is lost, create a new access key).",
        ));
    }
    Ok(())
}

/// Shows `prompt` and reads a line from standard input with the terminal's echo off, so that
/// the secret is not shown; the echo goes off before the prompt appears (nothing typed ahead is
/// echoed either) and is restored before returning.
fn read_hidden_line(prompt: &str) -> std::io::Result<String> {
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it in or fails and leaves it unused.
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd is this process's standard input; `term` is a valid termios to fill.
    if unsafe { libc::tcgetattr(fd, &mut term) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let saved = term;
    term.c_lflag &= !libc::ECHO;
    // Still echo the newline, so the next output starts on its own line.
    term.c_lflag |= libc::ECHONL;
    // SAFETY: as above; `term` is the settings just read with ECHO cleared.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(prompt.as_bytes());
        let _ = err.flush();
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    // SAFETY: restores the settings read above.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    read.map(|_| line.trim().to_owned())
}

/// Asks for the key at a terminal (the secret unechoed), or reads two lines from a pipe.
fn ask_for_key() -> Result<AccessKey, Failure> {
    let failed = |e: std::io::Error| {
        Failure::new(
            FailureKind::InvalidInput,
            format!("failed to read the access key: {e}"),
        )
        .with_fix("Give the IAM console's credentials.csv with --csv FILE.")
    };
    let terminal = std::io::stdin().is_terminal();
    let prompt = |text: &str| {
        if terminal {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    };
    prompt("AWS access key ID: ");
    let mut id = String::new();
    std::io::stdin().lock().read_line(&mut id).map_err(failed)?;
    let secret = if terminal {
        read_hidden_line("AWS secret access key (not shown): ").map_err(failed)?
    } else {
        let mut s = String::new();
        std::io::stdin().lock().read_line(&mut s).map_err(failed)?;
        s.trim().to_owned()
    };
    if id.trim().is_empty() && secret.is_empty() {
        return Err(Failure::new(
            FailureKind::InvalidInput,
            "no access key was given",
        )
        .with_fix("Give the IAM console's credentials.csv with --csv FILE, or run `payout setup` in a terminal and type the key."));
    }
    Ok(AccessKey {
        id: id.trim().to_owned(),
        secret,
        root: false,
    })
}

/// The access key ID a credentials-file section holds, if any.
fn section_key_id(section: &str) -> Option<String> {
    section.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "aws_access_key_id").then(|| v.trim().to_owned())
    })
}

/// Writes `text` to `path` through a private temporary file renamed into place: the file is
/// never seen half-written and is readable only by its owner (0600) from its first byte.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    // A symlinked credentials file (dotfiles) is written where it points.
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "credentials".into());
    let tmp = dir.join(format!(".{name}.payout-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

pub fn setup(args: SetupArgs, ctx: &Ctx) -> Outcome {
    if args.prolific {
        return setup_prolific(&args, ctx);
    }
    let key = match &args.csv {
        Some(file) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                Failure::new(
                    FailureKind::InvalidInput,
                    format!("failed to read {}: {e}", file.display()),
                )
                .with_fix("Give the path of the credentials.csv the IAM console offered.")
            })?;
            parse_key_file(&text).map_err(|why| {
                Failure::new(
                    FailureKind::InvalidInput,
                    format!("{} is not an access key file: {why}", file.display()),
                )
                .with_fix("Give the credentials.csv the IAM console offers when it creates an access key (Users → your user → Security credentials → Create access key → Download .csv file).")
            })?
        }
        None => ask_for_key()?,
    };
    check_key(&key)?;
    let Some(path) = credentials_path() else {
        return Err(Failure::new(
            FailureKind::Output,
            "no home directory to keep ~/.aws/credentials in",
        )
        .with_fix("Set HOME, or AWS_SHARED_CREDENTIALS_FILE to the file to write."));
    };
    let shown = display_path(&path);
    let before = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Failure::new(
                FailureKind::Output,
                format!("failed to read {shown}: {e}"),
            ));
        }
    };
    let existing = sections(&before, false)
        .into_iter()
        .find(|s| s.profile == args.profile);
    if let Some(s) = &existing
        && !args.force
    {
        let held = section_key_id(&before[s.start..s.end])
            .map(|id| format!(" (access key …{})", key_end(&id)))
            .unwrap_or_default();
        return Err(Failure::new(
            FailureKind::UnsafeOutput,
            format!(
                "{shown} has a profile {} already{held}; it was left as it was",
                args.profile
            ),
        )
        .with_fix(
            "Add --force to replace it, or store this key under another name with --profile NAME (and run payout with --profile NAME).",
        ));
    }
    if key.root {
        ctx.printer.warn(
            "warning: this is the root user's access key (rootkey.csv), which can do anything in the AWS account; if it leaks, the whole account does. Create an IAM user with the AmazonMechanicalTurkFullAccess policy, store its key with `payout setup --csv credentials.csv --force`, and delete the root key (AWS console → your account → Security credentials).",
        );
    }
    let body = format!(
        "[{}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        args.profile, key.id, key.secret
    );
    let after = with_profile(&before, &args.profile, &body);
    write_private(&path, &after).map_err(|e| {
        Failure::new(
            FailureKind::Output,
            format!("failed to write {shown}: {e}"),
        )
        .with_fix("Check that the directory exists and is yours, or set AWS_SHARED_CREDENTIALS_FILE to a file you can write.")
    })?;
    let replaced = existing.is_some();
    ctx.printer.say(format!(
        "{} the access key …{} as profile {} in {shown} (readable only by you).",
        if replaced { "Replaced with" } else { "Stored" },
        key_end(&key.id),
        args.profile
    ));
    // Say which credentials a plain `payout run` would pick, when they are not these.
    let first = if std::env::var_os("AWS_ACCESS_KEY_ID").is_some_and(|v| !v.is_empty()) {
        Some("AWS_ACCESS_KEY_ID in the environment".to_owned())
    } else if let Some(p) = std::env::var("AWS_PROFILE")
        .ok()
        .filter(|p| !p.is_empty() && *p != args.profile)
    {
        Some(format!("the profile {p} (AWS_PROFILE)"))
    } else if args.profile != "default" && where_defined("default").is_some() {
        Some("the default profile".to_owned())
    } else {
        None
    };
    match (first, args.profile == SETUP_PROFILE) {
        (None, true) => ctx.printer.say(
            "payout uses it whenever no other AWS credentials are set. Next: `payout doctor` checks it against the sandbox.",
        ),
        (Some(other), _) => ctx.printer.warn(format!(
            "note: payout finds {other} first; pass --profile {} to use this key. Next: `payout doctor --profile {0}`.",
            args.profile
        )),
        (None, false) => ctx.printer.say(format!(
            "Use it with --profile {}. Next: `payout doctor --profile {0}`.",
            args.profile
        )),
    }
    ctx.put("profile", &args.profile);
    ctx.put("credentials_file", path.display().to_string());
    ctx.put("access_key_id_end", key_end(&key.id));
    ctx.put("root_key", key.root);
    ctx.put("replaced", replaced);
    Ok(Exit::Ok)
}

/// Why a typed Prolific token is refused, without quoting it; `None` when it is one.
fn token_problem(text: &str) -> Option<&'static str> {
    let t = text.trim();
    if t.is_empty() {
        Some("no token was given")
    } else if t.chars().any(char::is_whitespace) {
        Some("the token contains a space: a Prolific token is one word")
    } else if Token::new(t).is_none() {
        Some("the token contains characters a Prolific token does not have")
    } else {
        None
    }
}

/// `payout setup --prolific`: a Prolific API token, asked at a terminal without echo (or read as
/// one line from a pipe), stored alone in [`token_path`], 0600 from its first byte.
fn setup_prolific(args: &SetupArgs, ctx: &Ctx) -> Outcome {
    let path = token_path();
    let shown = display_path(&path);
    if std::fs::symlink_metadata(&path).is_ok() && !args.force {
        let held = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| Token::new(&t))
            .map(|t| format!(" (token {})", t.hint()))
            .unwrap_or_default();
        return Err(Failure::new(
            FailureKind::UnsafeOutput,
            format!("{shown} holds a Prolific token already{held}; it was left as it was"),
        )
        .with_fix("Add --force to replace it."));
    }
    let failed = |e: std::io::Error| {
        Failure::new(
            FailureKind::InvalidInput,
            format!("failed to read the Prolific token: {e}"),
        )
        .with_fix(
            "Run `payout setup --prolific` in a terminal, or pipe the token to it on one line.",
        )
    };
    let text = if std::io::stdin().is_terminal() {
        read_hidden_line("Prolific API token (not shown): ").map_err(failed)?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(failed)?;
        line
    };
    if let Some(why) = token_problem(&text) {
        return Err(
            Failure::new(FailureKind::InvalidInput, why).with_fix(format!(
                "{}; then run `payout setup --prolific` and paste it.",
                TOKEN_FIX.trim_end_matches(" and set PROLIFIC_TOKEN=…")
            )),
        );
    }
    let token = Token::new(&text).expect("checked");
    let replaced = path.exists();
    write_private(&path, &format!("{}\n", text.trim())).map_err(|e| {
        Failure::new(FailureKind::Output, format!("failed to write {shown}: {e}"))
            .with_fix("Check that the directory is yours, or set PROLIFIC_TOKEN instead.")
    })?;
    ctx.printer.say(format!(
        "{} the Prolific token {} in {shown} (readable only by you). Next: `payout doctor --prolific` checks it.",
        if replaced { "Replaced with" } else { "Stored" },
        token.hint()
    ));
    if std::env::var_os("PROLIFIC_TOKEN").is_some() {
        ctx.printer.warn(
            "note: PROLIFIC_TOKEN is set, and takes precedence over this file: unset it to use the stored token.",
        );
    } else {
        ctx.printer
            .say("PROLIFIC_TOKEN, when set, takes precedence over this file.");
    }
    let hint = token.hint();
    ctx.put("token_file", path.display().to_string());
    ctx.put("token_end", hint.trim_start_matches('…'));
    ctx.put("replaced", replaced);
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_key_files_are_read() {
        let iam = "\u{feff}User name,Password,Access key ID,Secret access key,Console login link\nresearcher,,AKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,https://x\n";
        let k = parse_key_file(iam).unwrap();
        assert_eq!(k.id, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(k.secret, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert!(!k.root);
        let new = "Access key ID,Secret access key\r\nAKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\r\n";
        assert_eq!(parse_key_file(new).unwrap().id, "AKIAIOSFODNN7EXAMPLE");
        let root = "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE\r\nAWSSecretKey=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\r\n";
        let k = parse_key_file(root).unwrap();
        assert!(k.root);
        assert_eq!(k.secret, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    }

    #[test]
    fn bad_files_and_keys_are_refused_without_quoting_the_secret() {
        assert!(
            parse_key_file("a,b\n1,2\n")
                .unwrap_err()
                .contains("no `Access key ID`")
        );
        let two = "Access key ID,Secret access key,User name\nAKIAAAAAAAAAAAAAAAAA,s1,ann\nAKIABBBBBBBBBBBBBBBB,s2,bob\n";
        assert!(parse_key_file(two).unwrap_err().contains("lines 2, 3"));
        let secret = "wJalrXUtnFEMI/K7MDENG bPxRfiCYEXAMPLEKEY";
        let bad = AccessKey {
            id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: secret.into(),
            root: false,
        };
        let e = check_key(&bad).unwrap_err();
        assert!(!e.to_string().contains("bPxRfi"), "{e}");
        assert!(!format!("{bad:?}").contains("bPxRfi"));
        let temp = AccessKey {
            id: "ASIAIOSFODNN7EXAMPLE".into(),
            secret: "x".repeat(40),
            root: false,
        };
        assert!(check_key(&temp).unwrap_err().message.contains("temporary"));
    }

    #[test]
    fn a_prolific_token_is_one_word() {
        assert_eq!(token_problem("  abcdEFGH1234\n"), None);
        assert!(token_problem(" \n").unwrap().contains("no token"));
        assert!(token_problem("abcd 1234").unwrap().contains("space"));
        assert!(token_problem("abcd\t1234").unwrap().contains("space"));
        assert!(
            token_problem("abcd\u{7}1234")
                .unwrap()
                .contains("characters")
        );
    }
}
