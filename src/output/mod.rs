//! What people and programs see. Human output and the progress bar go to stderr, data
//! (`--json`, reports) to stdout or a file; one [`Printer`] decides how, and no write to any of
//! them can panic.

mod progress;
mod report;
mod summary;

use std::io::{IsTerminal, Write as _};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Map, Value};

pub use progress::Progress;
pub use report::{ReportFormat, write_report};
pub use summary::{Summary, plan_text};

/// What a command shares with the top level: how to print, and the `--json` object it builds.
pub struct Ctx {
    pub printer: Printer,
    json: Option<Mutex<Map<String, Value>>>,
}

impl Ctx {
    pub fn new(printer: Printer, json: bool) -> Ctx {
        Ctx {
            printer,
            json: json.then(|| Mutex::new(Map::new())),
        }
    }

    pub fn json(&self) -> bool {
        self.json.is_some()
    }

    /// Adds `key` to the `--json` object (nothing without `--json`).
    pub fn put(&self, key: &str, value: impl Serialize) {
        if let Some(j) = &self.json {
            let value = serde_json::to_value(value).unwrap_or(Value::Null);
            j.lock().expect("json lock").insert(key.to_owned(), value);
        }
    }

    /// The `--json` object built so far (taken: the next call answers an empty one); `None`
    /// without `--json`.
    pub fn take_json(&self) -> Option<Map<String, Value>> {
        let j = self.json.as_ref()?;
        Some(std::mem::take(&mut *j.lock().expect("json lock")))
    }

    /// Adds every field of `value` (an object) to the `--json` object.
    pub fn put_all(&self, value: impl Serialize) {
        if let (Some(j), Ok(Value::Object(fields))) = (&self.json, serde_json::to_value(value)) {
            j.lock().expect("json lock").extend(fields);
        }
    }
}

/// How output is shown: decided once from the terminal, `--quiet`, `NO_COLOR` and `CI`.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub quiet: bool,
    /// Draw a progress bar (stderr is a terminal, not quiet, not CI).
    pub bar: bool,
    /// Colour the target in banners.
    pub color: bool,
}

impl Printer {
    pub fn detect(quiet: bool) -> Printer {
        let tty = std::io::stderr().is_terminal();
        let ci = std::env::var_os("CI").is_some();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Printer {
            quiet,
            bar: tty && !quiet && !ci,
            color: tty && !no_color,
        }
    }

    /// A line of human output (stderr), unless quiet.
    pub fn say(&self, text: impl AsRef<str>) {
        if !self.quiet {
            self.warn(text);
        }
    }

    /// Something the user must see even with `--quiet` (errors, refusals, summaries).
    pub fn warn(&self, text: impl AsRef<str>) {
        // Nothing sensible can be done when stderr itself fails; it must not panic.
        let _ = writeln!(std::io::stderr().lock(), "{}", text.as_ref());
    }

    /// `PRODUCTION` in bold red on a colour terminal; the plain word otherwise.
    pub fn target(&self, target: crate::target::Target) -> String {
        match (self.color, target) {
            (true, crate::target::Target::Production) => {
                format!("\x1b[1;31m{}\x1b[0m", target.banner())
            }
            (true, _) => format!("\x1b[1m{}\x1b[0m", target.banner()),
            (false, _) => target.banner().to_owned(),
        }
    }
}

/// Why data could not be written.
#[derive(Debug)]
pub enum OutputError {
    /// The reader went away (`payout report | head`): stop quietly, as Unix tools do.
    Closed,
    Io(std::io::Error),
}

impl From<std::io::Error> for OutputError {
    fn from(e: std::io::Error) -> OutputError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            OutputError::Closed
        } else {
            OutputError::Io(e)
        }
    }
}

/// Writes data to stdout and flushes it.
pub fn write_stdout(text: &str) -> Result<(), OutputError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The first `max` characters of `text`, and `…` if there were more.
pub fn short(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// `1000000` as `1,000,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

pub fn plural(n: u64, word: &str) -> String {
    let sibilant = ["s", "sh", "ch", "x", "z"]
        .iter()
        .any(|e| word.ends_with(e));
    match (n, sibilant) {
        (1, _) => format!("{n} {word}"),
        (_, true) => format!("{n} {word}es"),
        (_, false) => format!("{n} {word}s"),
    }
}

/// `(singular, plural)` by count.
pub fn count(n: u64, (one, many): (&str, &str)) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Milliseconds since the epoch as RFC 3339: the journal's times, as it writes them.
pub use crate::journal::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(Some(0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(None), "");
    }

    #[test]
    fn counts_read_as_words() {
        assert_eq!(plural(1, "bonus"), "1 bonus");
        assert_eq!(plural(2, "bonus"), "2 bonuses");
        assert_eq!(plural(3, "row"), "3 rows");
        assert_eq!(plural(2, "other batch"), "2 other batches");
        assert_eq!(
            count(2, ("score to set", "scores to set")),
            "2 scores to set"
        );
    }
}
