//! `payout emulator --platform prolific`: its own flags, the seeded demo state a person can
//! try `payout run` against, and what it prints (URL, token, ids).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::state::{DEFAULT_TOKEN, FaultRates, ProlificConfig, ProlificSeed, ProlificState};

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "{text:?} is not a fraction between 0 and 1 (such as 0.05)"
        )),
    }
}

/// A percentage such as `33.3333` as parts per million.
fn parse_percent(text: &str) -> Result<u64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok((p * 10_000.0).round() as u64),
        _ => Err(format!(
            "{text:?} is not a percentage between 0 and 100 (such as 33.33)"
        )),
    }
}

/// Flags only `--platform prolific` reads (each refused with the MTurk emulator).
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Prolific (with --platform prolific)")]
pub struct ProlificFlags {
    /// Currency of the demo workspace and study (GBP or USD).
    #[arg(long, value_name = "CODE")]
    pub currency: Option<String>,
    /// Participants in the demo study, one submission each (one more has two).
    #[arg(long, value_name = "N")]
    pub participants: Option<usize>,
    /// Write the demo study's participant_id,submission_id,study_id rows to this CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub ids_file: Option<PathBuf>,
    /// Page size of every list when the client asks for none (Prolific's default is 20).
    #[arg(long, value_name = "N")]
    pub page_size: Option<usize>,
    /// Fees as a percentage of a bonus set-up's amount (default 33.3333).
    #[arg(long, value_parser = parse_percent, value_name = "PERCENT")]
    pub fee_percent: Option<u64>,
    /// VAT as a percentage of the fees (default 0).
    #[arg(long, value_parser = parse_percent, value_name = "PERCENT")]
    pub vat_percent: Option<u64>,
    /// Answer 429 to a money call (set-up or pay) arriving while another of the workspace is
    /// in progress: each holds the workspace for its latency plus this many ms.
    #[arg(long, value_name = "MS")]
    pub contention_ms: Option<u64>,
    /// A pay answered 429 for contention is queued all the same and lands (Prolific does not
    /// say which it does).
    #[arg(long)]
    pub contended_pay_applies: bool,
    /// Answer every error as {"message", "detail"} (the other shape Prolific uses) instead of
    /// {"error": {...}}.
    #[arg(long)]
    pub simple_errors: bool,
    /// Accepted pays land this many ms later (default 0: at once).
    #[arg(long, value_name = "MS")]
    pub pay_delay_ms: Option<u64>,
    /// Fraction of accepted pays that land only after --late-pay-ms.
    #[arg(long, value_parser = parse_rate, value_name = "RATE")]
    pub late_pay_rate: Option<f64>,
    /// How late a late pay lands (default 60000).
    #[arg(long, value_name = "MS")]
    pub late_pay_ms: Option<u64>,
    /// Fraction of set-ups whose id will not pay: the pay answers an error, nothing lands.
    #[arg(long, value_parser = parse_rate, value_name = "RATE")]
    pub unpayable_rate: Option<f64>,
}

impl ProlificFlags {
    /// The flags given, by name, so the MTurk emulator can refuse them.
    pub fn given(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut note = |set: bool, name| {
            if set {
                out.push(name);
            }
        };
        note(self.currency.is_some(), "--currency");
        note(self.participants.is_some(), "--participants");
        note(self.ids_file.is_some(), "--ids-file");
        note(self.page_size.is_some(), "--page-size");
        note(self.fee_percent.is_some(), "--fee-percent");
        note(self.vat_percent.is_some(), "--vat-percent");
        note(self.contention_ms.is_some(), "--contention-ms");
        note(self.contended_pay_applies, "--contended-pay-applies");
        note(self.simple_errors, "--simple-errors");
        note(self.pay_delay_ms.is_some(), "--pay-delay-ms");
        note(self.late_pay_rate.is_some(), "--late-pay-rate");
        note(self.late_pay_ms.is_some(), "--late-pay-ms");
        note(self.unpayable_rate.is_some(), "--unpayable-rate");
        out
    }
}

/// The flags shared with the MTurk emulator, as the Prolific one reads them.
#[derive(Debug, Clone, Copy)]
pub struct CommonFlags {
    pub balance_minor: i64,
    pub seed: u64,
    pub latency_ms: u64,
    pub jitter_ms: u64,
    pub lost_rate: f64,
    pub fault_after_rate: f64,
    pub drop_before_rate: f64,
    /// Whether the three rates also apply to reads (`--fault-scope all`).
    pub faults_on_reads: bool,
}

/// The ids of the seeded demo state.
#[derive(Debug, Clone)]
pub struct Demo {
    pub workspace: String,
    pub study: String,
    pub group: String,
    /// (participant, submission), in creation order; the last participant appears twice.
    pub rows: Vec<(String, String)>,
}

/// A workspace with `balance_minor`, a study with `participants` submissions (plus a second
/// submission for the last participant, to try the "several submissions" refusal), and a group
/// holding the first participant.
pub fn demo_state(
    currency: &str,
    balance_minor: i64,
    participants: usize,
) -> (ProlificState, Demo) {
    let mut seed = ProlificSeed::new();
    let workspace = seed.workspace("Emulated workspace", currency, balance_minor);
    let study = seed.study(&workspace, "Demo study");
    let mut rows = seed.generate(&study, participants.max(1));
    if let Some((p, _)) = rows.last().cloned() {
        let again = seed.submission(&study, &p);
        rows.push((p, again));
    }
    let group = seed.group(&workspace, "Demo group", &[rows[0].0.clone()]);
    let demo = Demo {
        workspace,
        study,
        group,
        rows,
    };
    (seed.build(), demo)
}

/// The configuration the flags describe.
pub fn config(common: &CommonFlags, flags: &ProlificFlags) -> ProlificConfig {
    let defaults = ProlificConfig::default();
    let rates = FaultRates::uniform(
        common.drop_before_rate,
        common.lost_rate,
        common.fault_after_rate,
    );
    ProlificConfig {
        seed: common.seed,
        latency: Duration::from_millis(common.latency_ms),
        latency_jitter: Duration::from_millis(common.jitter_ms),
        setup_faults: rates,
        pay_faults: rates,
        group_faults: rates,
        read_faults: if common.faults_on_reads {
            rates
        } else {
            FaultRates::default()
        },
        contention_window: flags.contention_ms.map(Duration::from_millis),
        contended_pay_applies: flags.contended_pay_applies,
        simple_errors: flags.simple_errors,
        pay_delay: flags
            .pay_delay_ms
            .map_or(defaults.pay_delay, Duration::from_millis),
        late_pay_rate: flags.late_pay_rate.unwrap_or(0.0),
        late_pay_delay: flags
            .late_pay_ms
            .map_or(defaults.late_pay_delay, Duration::from_millis),
        unpayable_rate: flags.unpayable_rate.unwrap_or(0.0),
        page_size: flags.page_size.unwrap_or(defaults.page_size).max(1),
        fee_ppm: flags.fee_percent.unwrap_or(defaults.fee_ppm),
        vat_ppm: flags.vat_percent.unwrap_or(defaults.vat_ppm),
        ..defaults
    }
}

fn write_ids(path: &Path, demo: &Demo) -> io::Result<()> {
    let mut text = String::from("participant_id,submission_id,study_id\n");
    for (p, s) in &demo.rows {
        text.push_str(&format!("{p},{s},{}\n", demo.study));
    }
    std::fs::write(path, text)
}

/// What `payout emulator --platform prolific` prints once the port is bound. The first line
/// is the MTurk emulator's, so scripts wait for the same thing.
pub fn announcement(url: &str, demo: &Demo, currency: &str, ids_file: Option<&Path>) -> String {
    let mut out = format!("payout emulator listening on {url}\n");
    out.push_str(&format!(
        "Prolific API at {url}/api/v1/ (no real money; this token is the emulator's own)\n"
    ));
    out.push_str(&format!("token: {DEFAULT_TOKEN}\n"));
    out.push_str(&format!("workspace: {} ({currency})\n", demo.workspace));
    out.push_str(&format!(
        "study: {} ({} submissions; the last participant has two)\n",
        demo.study,
        demo.rows.len()
    ));
    out.push_str(&format!("participant group: {} (Demo group)\n", demo.group));
    for (p, s) in demo.rows.iter().take(3) {
        out.push_str(&format!("participant {p}  submission {s}\n"));
    }
    match ids_file {
        Some(path) => out.push_str(&format!("all ids written to {}\n", path.display())),
        None => out.push_str("(--ids-file FILE.csv writes every id)\n"),
    }
    // What payout accepts today: a Prolific run against a stand-in is a --testing-endpoint
    // one, rehearsed with --dry-run, then run with --production (no real money here).
    out.push_str(&format!(
        "try: PROLIFIC_TOKEN={DEFAULT_TOKEN} payout run bonuses.csv --platform prolific --study {} --endpoint-url {url} --testing-endpoint --dry-run   (then the same with --production)\n",
        demo.study
    ));
    out
}

/// Serves until `shutdown` completes.
pub async fn serve(
    common: CommonFlags,
    flags: ProlificFlags,
    addr: std::net::SocketAddr,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let currency = flags.currency.clone().unwrap_or_else(|| "GBP".to_owned());
    if !matches!(currency.as_str(), "GBP" | "USD") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("--currency {currency:?}: Prolific's currencies are GBP and USD"),
        ));
    }
    let (state, demo) = demo_state(
        &currency,
        common.balance_minor,
        flags.participants.unwrap_or(5),
    );
    if let Some(path) = &flags.ids_file {
        write_ids(path, &demo)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    }
    let emulator =
        super::server::RunningProlific::start(state, config(&common, &flags), addr).await?;
    let text = announcement(&emulator.url(), &demo, &currency, flags.ids_file.as_deref());
    {
        let mut out = io::stdout().lock();
        // Scripts wait for the first line, so nothing may sit in a buffer.
        out.write_all(text.as_bytes())?;
        out.flush()?;
    }
    shutdown.await;
    emulator.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_become_parts_per_million() {
        assert_eq!(parse_percent("33.3333"), Ok(333_333));
        assert_eq!(parse_percent("20"), Ok(200_000));
        assert!(parse_percent("101").is_err());
    }

    #[test]
    fn the_demo_has_a_participant_with_two_submissions() {
        let (state, demo) = demo_state("USD", 1000, 3);
        assert_eq!(demo.rows.len(), 4);
        assert_eq!(demo.rows[2].0, demo.rows[3].0);
        assert_eq!(state.submissions.len(), 4);
        assert_eq!(state.workspaces[&demo.workspace].currency, "USD");
    }
}
