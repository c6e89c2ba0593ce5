//! `payout run FILE`: validate the whole file, plan it, check the account, pass production's
//! gate, record the batch (or find it again), then do it. Running the same command again
//! resumes it.

use std::path::PathBuf;

use clap::Args;

use super::args::{JournalArgs, PaceArgs, TargetArgs};
use super::{Ctx, Outcome, Terminal};
use crate::batch::mturk::{CHECKED_AT_MOST, Ran, RunSettings};
use crate::error::{Failure, FailureKind};
use crate::input::InputOptions;
use crate::journal::BatchKind;
use crate::money::Cents;

fn parse_dollars(s: &str) -> Result<Cents, String> {
    Cents::parse_bonus(s).map_err(|e| format!("{s:?} {e}"))
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  payout run bonuses.csv --dry-run       check the file and the account, show the plan and fees\n  payout run bonuses.csv                 pay in the sandbox\n  payout run bonuses.csv --production    pay for real (after a rehearsal; asks to confirm)\n  payout run workers.csv --notify        qualification changes, e-mailing workers on grants"
)]
pub struct RunArgs {
    /// The CSV: bonuses (WorkerId, AssignmentId, BonusAmount, Reason) or qualification changes.
    file: PathBuf,
    #[command(flatten)]
    pub journal: JournalArgs,
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    pub pace: PaceArgs,
    /// Read the amount from this column (for example in a batch-results file).
    #[arg(long, value_name = "NAME")]
    amount_column: Option<String>,
    /// Reason for rows without one (shown to the worker).
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    /// Keep rows that repeat another row exactly (each is done once).
    #[arg(long)]
    allow_duplicates: bool,
    /// What the file holds, when its header does not say: bonus or qualification.
    #[arg(long, value_name = "KIND")]
    kind: Option<BatchKind>,
    /// The qualification type (ID or name) of every row of an API-style qualification file.
    #[arg(long, value_name = "ID|NAME")]
    qualification: Option<String>,
    /// Let MTurk e-mail workers about the scores they are granted (off by default).
    #[arg(long)]
    notify: bool,
    /// Reason recorded with each block of a website file (MTurk requires one).
    #[arg(long, value_name = "TEXT")]
    block_reason: Option<String>,
    /// Do again operations that an earlier batch in this journal already did.
    #[arg(long)]
    allow_repeat: bool,
    /// Pay bonuses for assignments another batch already paid a different bonus for (a further round).
    #[arg(long)]
    allow_overlap: bool,
    /// Cancel older unfinished batches this file overlaps (after verifying what they sent).
    #[arg(long)]
    supersede: bool,
    /// Create qualification types the file names that do not exist yet (once each).
    #[arg(long)]
    create_missing: bool,
    /// Refuse any bonus above this many dollars (catches 50 typed for 0.50).
    #[arg(long, value_name = "DOLLARS", default_value = "25.00", value_parser = parse_dollars)]
    max_bonus: Cents,
    /// Refuse the batch if bonuses plus fees come to more than this many dollars.
    #[arg(long, value_name = "DOLLARS", value_parser = parse_dollars)]
    max_total: Option<Cents>,
    /// Run in production without a rehearsal of this file (recorded with the batch).
    #[arg(long)]
    skip_rehearsal: bool,
    /// Validate, check the account and every operation (read-only), show the plan: nothing is
    /// sent. A production dry run whose checks pass is the rehearsal production needs.
    #[arg(long)]
    dry_run: bool,
    /// The platform: mturk, or prolific (told from the file's header when not given).
    #[arg(long, value_name = "NAME", value_parser = ["mturk", "prolific"])]
    platform: Option<String>,
    /// Prolific: the study every row is paid in (or a study_id column).
    #[arg(long, value_name = "ID")]
    study: Option<String>,
    /// Prolific: the workspace that pays, when the token can use several.
    #[arg(long, value_name = "ID")]
    workspace: Option<String>,
    /// Prolific: rows per set-up (one money call at a time).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    chunk_size: u32,
    /// Prolific: how long a paid chunk may take to show on its submissions before it is "not
    /// observed" and left for you to check (15s, 10m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = super::prolific::parse_duration)]
    settle: std::time::Duration,
    /// Prolific: the participant group of every row that names none (a name or an ID).
    #[arg(long, value_name = "NAME|ID")]
    group: Option<String>,
    /// Prolific: like --group, for a group used as a block list (the plan says what that means).
    #[arg(long, value_name = "NAME|ID")]
    block_list: Option<String>,
    /// Prolific groups: rows that say no action add their participant (the default).
    #[arg(long, conflicts_with = "remove")]
    add: bool,
    /// Prolific groups: rows that say no action remove their participant.
    #[arg(long)]
    remove: bool,
    /// Operations a dry run checks at most (tests make it small).
    #[arg(long, default_value_t = CHECKED_AT_MOST, hide = true)]
    checked_at_most: usize,
}

/// The Prolific part of `payout run`: its own batch life (`batch::prolific`).
async fn prolific(args: &RunArgs, ctx: &Ctx) -> Outcome {
    super::prolific::run_prolific(
        super::prolific::ProlificRun {
            file: &args.file,
            journal: &args.journal,
            study: args.study.clone(),
            workspace: args.workspace.clone(),
            production: args.target.production,
            sandbox: args.target.sandbox,
            emulator: args.target.emulator,
            endpoint: args
                .target
                .endpoint_url
                .as_ref()
                .map(|e| e.as_str().to_owned()),
            testing_endpoint: args.target.testing_endpoint,
            dry_run: args.dry_run,
            yes: args.pace.yes,
            skip_rehearsal: args.skip_rehearsal,
            max_bonus: args.max_bonus,
            max_total: args.max_total,
            amount_column: args.amount_column.clone(),
            chunk_size: args.chunk_size as usize,
            settle: args.settle,
            backoff: std::time::Duration::from_millis(args.pace.backoff_ms),
            group: args.group.clone(),
            block_list: args.block_list.clone(),
            action: if args.remove {
                Some(crate::item::MemberAction::Remove)
            } else if args.add {
                Some(crate::item::MemberAction::Add)
            } else {
                None
            },
            create_missing: args.create_missing,
        },
        ctx,
    )
    .await
}

pub async fn run(args: RunArgs, ctx: &Ctx) -> Outcome {
    // A Prolific file: named by --platform, or told from its header when the MTurk reading
    // does not recognise it (the file is not opened an extra time for MTurk's files).
    // Participant groups are Prolific's: their flags name the platform.
    let group_flags = args.group.is_some() || args.block_list.is_some() || args.add || args.remove;
    if group_flags && args.platform.as_deref() == Some("mturk") {
        return Err(Failure::new(
            FailureKind::Usage,
            "--group, --block-list, --add and --remove are for Prolific's participant groups, not MTurk",
        )
        .with_fix("on MTurk, qualification files say the qualification of each row; drop --platform mturk for a Prolific group file"));
    }
    if args.platform.as_deref() == Some("prolific") || group_flags {
        return prolific(&args, ctx).await;
    }
    let settings = RunSettings {
        file: args.file.clone(),
        journal: args.journal.path(),
        place: args.target.choice(),
        connect: args.target.connect(&args.pace),
        yes: args.pace.yes,
        dry_run: args.dry_run,
        skip_rehearsal: args.skip_rehearsal,
        input: InputOptions {
            amount_column: args.amount_column.clone(),
            default_reason: args.reason.clone(),
            allow_duplicates: args.allow_duplicates,
            kind: args.kind,
            qualification: args.qualification.clone(),
            notify: args.notify,
            block_reason: args.block_reason.clone(),
        },
        allow_repeat: args.allow_repeat,
        allow_overlap: args.allow_overlap,
        supersede: args.supersede,
        create_missing: args.create_missing,
        max_bonus: args.max_bonus,
        max_total: args.max_total,
        checked_at_most: args.checked_at_most,
        platform_from_header: args.platform.is_none(),
    };
    match crate::batch::mturk::run(&settings, ctx, &Terminal).await? {
        Ran::Ended(exit) => Ok(exit),
        Ran::ProlificFile => prolific(&args, ctx).await,
    }
}
