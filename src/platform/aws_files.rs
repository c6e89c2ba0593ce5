//! The AWS shared credentials and config files as the AWS CLI lays them out: where they are,
//! which profiles they define, and one profile replaced or added with every other byte of the
//! file kept as it was. Knows nothing of MTurk; never prints a secret.

use std::path::{Path, PathBuf};

/// The profile `payout setup` writes, and the one payout falls back to.
pub const SETUP_PROFILE: &str = "payout";

/// `$AWS_SHARED_CREDENTIALS_FILE`, or `~/.aws/credentials`.
pub fn credentials_path() -> Option<PathBuf> {
    file_from_env("AWS_SHARED_CREDENTIALS_FILE", "credentials")
}

/// `$AWS_CONFIG_FILE`, or `~/.aws/config`.
pub fn config_path() -> Option<PathBuf> {
    file_from_env("AWS_CONFIG_FILE", "config")
}

fn file_from_env(var: &str, name: &str) -> Option<PathBuf> {
    match std::env::var(var) {
        Ok(p) if !p.trim().is_empty() => Some(expand_home(p.trim())),
        _ => dirs::home_dir().map(|h| h.join(".aws").join(name)),
    }
}

/// `~/x` as the AWS tools read it.
fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    }
}

/// A path with the home directory shown as `~`, for messages.
pub fn display_path(p: &Path) -> String {
    if let Some(home) = dirs::home_dir()
        && let Ok(rest) = p.strip_prefix(&home)
    {
        return format!("~/{}", rest.display());
    }
    p.display().to_string()
}

/// One `[section]` of an INI-style AWS file: its profile name and its bytes (header line to the
/// line before the next header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub profile: String,
    pub start: usize,
    pub end: usize,
}

/// The profile a header line names: `[name]` in the credentials file; `[default]` or
/// `[profile name]` in the config file.
fn header_profile(line: &str, config: bool) -> Option<String> {
    let line = line.trim();
    let inner = line.strip_prefix('[')?.split_once(']')?.0.trim();
    if !config || inner == "default" {
        return Some(inner.to_owned());
    }
    let name = inner.strip_prefix("profile")?;
    name.starts_with([' ', '\t'])
        .then(|| name.trim().to_owned())
}

/// Every section of `text`, in order. Bytes before the first header belong to none.
pub fn sections(text: &str, config: bool) -> Vec<Section> {
    let mut out: Vec<Section> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with('[') {
            if let Some(last) = out.last_mut() {
                last.end = offset;
            }
            // A header payout cannot read still ends the section before it.
            out.push(Section {
                profile: header_profile(line, config).unwrap_or_default(),
                start: offset,
                end: text.len(),
            });
        }
        offset += line.len();
    }
    out.retain(|s| !s.profile.is_empty());
    out
}

/// Which file defines `profile`: the credentials file first (as the SDK reads it), then config.
pub fn where_defined(profile: &str) -> Option<PathBuf> {
    let candidates = [(credentials_path(), false), (config_path(), true)];
    candidates.into_iter().find_map(|(path, config)| {
        let path = path?;
        let text = std::fs::read_to_string(&path).ok()?;
        sections(&text, config)
            .iter()
            .any(|s| s.profile == profile)
            .then_some(path)
    })
}

/// `text` with the credentials-file section `profile` replaced by `body`, or `body` appended.
/// A file that repeats the section (the SDK merges repeats) keeps only the new one. Every
/// other byte stays as it was.
pub fn with_profile(text: &str, profile: &str, body: &str) -> String {
    let matching: Vec<Section> = sections(text, false)
        .into_iter()
        .filter(|s| s.profile == profile)
        .collect();
    let mut out = String::with_capacity(text.len() + body.len() + 2);
    if matching.is_empty() {
        out.push_str(text);
        if !out.is_empty() {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push('\n');
        }
        out.push_str(body);
        return out;
    }
    let mut pos = 0;
    for (i, s) in matching.iter().enumerate() {
        out.push_str(&text[pos..s.start]);
        if i == 0 {
            out.push_str(body);
            // A blank line before the next section, as the AWS CLI writes them.
            if s.end < text.len() {
                out.push('\n');
            }
        }
        pos = s.end;
    }
    out.push_str(&text[pos..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_found_in_both_files() {
        let creds = "[default]\naws_access_key_id = A\n\n[payout]\nx = 1\n";
        let s = sections(creds, false);
        assert_eq!(
            s.iter().map(|s| s.profile.as_str()).collect::<Vec<_>>(),
            ["default", "payout"]
        );
        assert_eq!(&creds[s[1].start..s[1].end], "[payout]\nx = 1\n");
        let config = "[default]\nregion=us-east-1\n[profile study]\n[profiler]\n";
        let s = sections(config, true);
        assert_eq!(
            s.iter().map(|s| s.profile.as_str()).collect::<Vec<_>>(),
            ["default", "study"]
        );
    }

    #[test]
    fn a_profile_is_replaced_or_appended_and_nothing_else_changes() {
        let before = "# mine\r\n[default]\r\nkey = a\r\n\r\n[payout]\nold = 1\n\n[other]\nk = v";
        let after = with_profile(before, "payout", "[payout]\nnew = 2\n");
        assert_eq!(
            after,
            "# mine\r\n[default]\r\nkey = a\r\n\r\n[payout]\nnew = 2\n\n[other]\nk = v"
        );
        let added = with_profile("[default]\nk = v", "payout", "[payout]\nnew = 2\n");
        assert_eq!(added, "[default]\nk = v\n\n[payout]\nnew = 2\n");
        assert_eq!(with_profile("", "payout", "[payout]\n"), "[payout]\n");
        let twice = with_profile("[payout]\na\n[x]\n[payout]\nb\n", "payout", "[payout]\nc\n");
        assert_eq!(twice, "[payout]\nc\n\n[x]\n");
    }
}
