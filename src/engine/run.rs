//! A run of a batch: skip what other batches did, verify what may have been applied, send what
//! is pending. Each operation's life is the pure table [`after_answer`] driven by real answers.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::locks::GroupLocks;
use super::quals::QualMap;
use super::retry::{backoff, read_with_retries};
use super::verify::{Verdict, decide_block, decide_bonuses, decide_qualification};
use super::{EngineConfig, Event, Reporter, RunEnd, StopReason, StopSignal};
use crate::journal::query::{
    ItemFilter, foreign_unknown_groups, group_items, items_page, ledger_has_other_batches, same_ops,
};
use crate::journal::{BatchInfo, ItemRecord, ItemState, JournalError, JournalWriter, Write};
use crate::op::{Group, Kind};
use crate::pace::Pacer;
use crate::plan::{decides_same, latest_decision};
use crate::platform::{Call, ErrorClass, Platform, PlatformError, QualScore};

/// Items read from the journal at a time.
const PAGE: usize = 256;

/// What to do after an attempt's answer (see [`after_answer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Done,
    Failed,
    /// Refused before applying: send again after a pause (counts as a fault).
    Retry,
    /// Throttled: slow the shared pace, then send again.
    RetryThrottled,
    /// May have been applied: verify it; if it was not, send it again.
    VerifyThenRetry,
    /// Verify it; if it was not applied, it failed (the answer said why).
    VerifyThenFail,
    /// Every operation would fail alike: stop the batch.
    Stop,
}

/// The state to record after an attempt, and what to do next — the whole life of an operation
/// as a table. `maybe_applied` says whether an earlier attempt may have been applied.
pub fn after_answer(
    kind: Kind,
    maybe_applied: bool,
    answer: Result<(), ErrorClass>,
) -> (ItemState, Next) {
    let open = if maybe_applied {
        ItemState::Unknown
    } else {
        ItemState::Pending
    };
    match answer {
        Ok(()) => (ItemState::Done, Next::Done),
        Err(ErrorClass::Throttled) => (open, Next::RetryThrottled),
        Err(ErrorClass::NotSent) => (open, Next::Retry),
        Err(ErrorClass::Ambiguous) => (ItemState::Unknown, Next::VerifyThenRetry),
        Err(ErrorClass::AlreadyDone) => (ItemState::Unknown, Next::VerifyThenFail),
        // A refusal after an attempt that may have been applied proves nothing about that one.
        Err(ErrorClass::Refused) if maybe_applied => (ItemState::Unknown, Next::VerifyThenFail),
        // Revoking what the worker does not hold, or unblocking a worker who is not blocked,
        // may be refused although the state asked for already holds.
        Err(ErrorClass::Refused) if matches!(kind, Kind::Revoke | Kind::Unblock) => {
            (ItemState::Pending, Next::VerifyThenFail)
        }
        Err(ErrorClass::Refused) => (ItemState::Failed, Next::Failed),
        Err(ErrorClass::Systemic(_)) => (open, Next::Stop),
    }
}

/// What a run works with: where it sends, where it records, what it runs and how.
pub struct Run<P> {
    pub platform: Arc<P>,
    pub journal: Arc<JournalWriter>,
    pub batch: BatchInfo,
    /// The batch's qualification names resolved to type IDs.
    pub quals: QualMap,
    pub cfg: EngineConfig,
    pub pacer: Pacer,
    pub reporter: Arc<dyn Reporter>,
    pub stop: Arc<StopSignal>,
}

/// Everything a run's tasks share: the run, and its groups' locks.
pub(super) struct Ctx<P> {
    run: Run<P>,
    pub locks: GroupLocks,
}

impl<P> std::ops::Deref for Ctx<P> {
    type Target = Run<P>;
    fn deref(&self) -> &Run<P> {
        &self.run
    }
}

impl<P> Run<P> {
    fn ctx(self) -> Arc<Ctx<P>> {
        Arc::new(Ctx {
            run: self,
            locks: GroupLocks::default(),
        })
    }
}

/// Runs a batch: verify, skip, send. Returns when every started operation has settled;
/// operations not started stay open in the journal.
pub async fn execute<P: Platform>(run: Run<P>) -> Result<RunEnd, JournalError> {
    let ctx = run.ctx();
    let run = ctx
        .journal
        .write(Write::RunStart {
            batch: ctx.batch.id,
        })
        .await?;
    let result = async {
        verify_unknown(&ctx).await?;
        skip_done_elsewhere(&ctx).await?;
        dispatch(&ctx).await
    }
    .await;
    let stop = ctx.stop.reason();
    if let Err(e) = &result {
        ctx.stop.stop(StopReason::Journal(e.to_string()));
    }
    let outcome = match (&result, &stop) {
        (Err(e), _) => format!("journal error: {e}"),
        (Ok(()), Some(StopReason::User)) => "stopped on request".into(),
        (Ok(()), Some(StopReason::Systemic(_, m))) => format!("stopped: {m}"),
        (Ok(()), Some(StopReason::Journal(m))) => format!("journal error: {m}"),
        (Ok(()), None) => "ran to the end".into(),
    };
    // Best effort: a journal that just failed may refuse this too.
    let _ = ctx
        .journal
        .write(Write::RunEnd {
            run,
            outcome,
            pace: ctx.pacer.rate(),
            limit: ctx.pacer.limit_estimate(),
        })
        .await;
    result?;
    Ok(RunEnd {
        stop,
        pace: ctx.pacer.rate(),
        limit: ctx.pacer.limit_estimate(),
    })
}

/// Only verifies (for `payout cancel` and `--supersede`): every unknown operation of the batch
/// is decided if the platform can be asked. Returns how many stay unknown.
pub async fn verify_open<P: Platform>(run: Run<P>) -> Result<u64, JournalError> {
    let ctx = run.ctx();
    verify_unknown(&ctx).await?;
    let id = ctx.batch.id;
    let left = ctx
        .journal
        .read(move |c| {
            Ok(items_page(
                c,
                id,
                None,
                usize::MAX >> 1,
                ItemFilter::State(ItemState::Unknown),
            )?
            .len() as u64)
        })
        .await?;
    Ok(left)
}

/// A pending operation that another batch on the ledger already did (same operation, same
/// occurrence) is skipped: a batch recorded before the other finished must not do it again.
async fn skip_done_elsewhere<P: Platform>(ctx: &Ctx<P>) -> Result<(), JournalError> {
    let batch = ctx.batch.id;
    let recorded = ctx.batch.created_ms;
    let ledger = ctx.batch.ledger.clone();
    let others = {
        let ledger = ledger.clone();
        ctx.journal
            .read(move |c| ledger_has_other_batches(c, &ledger, batch))
            .await?
    };
    if !others {
        return Ok(());
    }
    let mut after = None;
    loop {
        let ledger = ledger.clone();
        let skips = ctx
            .journal
            .read(move |c| {
                let page =
                    items_page(c, batch, after, PAGE, ItemFilter::State(ItemState::Pending))?;
                let last = page.last().map(|i| i.seq);
                let mut skips = Vec::new();
                for item in page {
                    let twin = if item.op.kind() == Kind::Bonus {
                        same_ops(c, &ledger, &item.op, batch)?
                            .into_iter()
                            .find(|p| {
                                p.item.state == ItemState::Done
                                    && p.item.occurrence == item.occurrence
                            })
                    } else {
                        // A state: what was decided before this batch was recorded, its plan
                        // weighed (with the platform's standing); what was decided since makes
                        // it needless only if the latest such decision is this one.
                        let mut group = group_items(c, &ledger, &item.op.group(), batch)?;
                        group.retain(|p| p.item.finished_ms.is_some_and(|ms| ms >= recorded));
                        latest_decision(&group)
                            .filter(|p| decides_same(&p.item.op, &item.op))
                            .cloned()
                    };
                    if let Some(p) = twin {
                        skips.push((item.seq, p.batch_name, p.item.origin));
                    }
                }
                Ok((last, skips))
            })
            .await?;
        for (seq, name, origin) in skips.1 {
            ctx.journal
                .write(Write::Resolve {
                    batch,
                    seq,
                    state: ItemState::Skipped,
                    note: format!("done by batch {name} ({origin}) after this batch was recorded"),
                })
                .await?;
        }
        match skips.0 {
            Some(last) => after = Some(last),
            None => return Ok(()),
        }
    }
}

/// Verifies every group that holds an unknown operation and an open operation of this batch —
/// whichever batch on the ledger the unknown one belongs to — groups side by side, each once.
async fn verify_unknown<P: Platform>(ctx: &Arc<Ctx<P>>) -> Result<(), JournalError> {
    let batch = ctx.batch.id;
    let ledger = ctx.batch.ledger.clone();
    // Other batches' unknown operations in this batch's open groups (rare: version-1 journals,
    // or batches recorded before another's answers were known).
    let foreign: BTreeSet<Group> = ctx
        .journal
        .read(move |c| foreign_unknown_groups(c, &ledger, batch))
        .await?;
    let mut after = None;
    let mut first = true;
    loop {
        let page = ctx
            .journal
            .read(move |c| items_page(c, batch, after, PAGE, ItemFilter::State(ItemState::Unknown)))
            .await?;
        let mut groups: BTreeSet<Group> = page.iter().map(|i| i.op.group()).collect();
        if first {
            groups.extend(foreign.iter().cloned());
        }
        if groups.is_empty() {
            return Ok(());
        }
        if first {
            ctx.reporter.event(&Event::Verifying {
                groups: groups.len() as u64,
            });
            first = false;
        }
        let slots = Arc::new(Semaphore::new(ctx.cfg.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for group in groups {
            if ctx.stop.is_stopped() {
                break;
            }
            let permit = slots.clone().acquire_owned().await.expect("never closed");
            let ctx = ctx.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let _g = ctx.locks.lock(group.clone()).await;
                let mut rng = fastrand::Rng::with_seed(ctx.cfg.seed ^ group.hash64() as u64);
                if let Err(e) = verify_group(&ctx, &group, None, &mut rng).await?
                    && let ErrorClass::Systemic(kind) = e.class
                {
                    ctx.stop.stop(StopReason::Systemic(kind, e.to_string()));
                }
                Ok::<(), JournalError>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("verification tasks do not panic")?;
        }
        match page.last() {
            Some(last) if !ctx.stop.is_stopped() => after = Some(last.seq),
            _ => return Ok(()),
        }
    }
}

/// Verifies one group against the platform (the caller holds its lock) and records every
/// verdict but `focus`'s, whose verdict is returned for the caller to act on. `Err` inside:
/// the platform could not be asked; nothing was changed.
async fn verify_group<P: Platform>(
    ctx: &Ctx<P>,
    group: &Group,
    focus: Option<&ItemRecord>,
    rng: &mut fastrand::Rng,
) -> Result<Result<Option<Verdict>, PlatformError>, JournalError> {
    let ledger = ctx.batch.ledger.clone();
    let g = group.clone();
    let items = ctx
        .journal
        .read(move |c| group_items(c, &ledger, &g, -1))
        .await?;
    let is_focus = |i: &ItemRecord| focus.is_some_and(|f| f.batch == i.batch && f.seq == i.seq);
    let wanted = |i: &ItemRecord| i.state == ItemState::Unknown || is_focus(i);
    let read = |what: String| {
        let reporter = ctx.reporter.clone();
        move |e: &PlatformError, delay: Duration| {
            reporter.event(&Event::Retrying {
                seq: None,
                class: e.class,
                message: format!("{what}: {e}"),
                delay,
            })
        }
    };
    let verdicts: Vec<(usize, Verdict)> = match group {
        Group::Assignment { worker, assignment } => {
            let listed = read_with_retries(
                &ctx.cfg,
                Some(&ctx.pacer),
                Some(&ctx.stop),
                rng,
                read(format!("checking MTurk's bonus list for {assignment}")),
                || ctx.platform.bonuses_for_assignment(assignment),
            )
            .await;
            let mut listed = match listed {
                Ok(l) => l,
                Err(e) => return Ok(Err(e)),
            };
            listed.retain(|b| b.worker == worker.as_str());
            decide_bonuses(&items, &listed)
        }
        Group::Qualification {
            worker,
            qualification,
        } => {
            let Some(id) = ctx.quals.id(qualification) else {
                return Ok(Err(unresolved(qualification)));
            };
            let now = read_with_retries(
                &ctx.cfg,
                Some(&ctx.pacer),
                Some(&ctx.stop),
                rng,
                read(format!("checking {worker}'s qualification {qualification}")),
                || ctx.platform.qualification_score(worker, &id),
            )
            .await;
            let now: QualScore = match now {
                Ok(n) => n,
                Err(e) => return Ok(Err(e)),
            };
            items
                .iter()
                .enumerate()
                .filter(|(_, g)| wanted(&g.item))
                .map(|(i, g)| (i, decide_qualification(&g.item.op, now)))
                .collect()
        }
        Group::Worker { worker } => {
            let blocked = read_with_retries(
                &ctx.cfg,
                Some(&ctx.pacer),
                Some(&ctx.stop),
                rng,
                read("checking the worker block list".into()),
                || ctx.platform.blocked_workers(),
            )
            .await;
            let blocked = match blocked {
                Ok(b) => b.iter().any(|w| w == worker.as_str()),
                Err(e) => return Ok(Err(e)),
            };
            items
                .iter()
                .enumerate()
                .filter(|(_, g)| wanted(&g.item))
                .map(|(i, g)| (i, decide_block(&g.item.op, blocked)))
                .collect()
        }
    };
    let mut focus_verdict = None;
    for (i, verdict) in verdicts {
        let item = &items[i].item;
        if is_focus(item) {
            focus_verdict = Some(verdict);
            continue;
        }
        let (state, note) = match &verdict {
            Verdict::Applied(n) => (ItemState::Done, n.clone()),
            Verdict::NotApplied(n) => (ItemState::Pending, n.clone()),
        };
        ctx.journal
            .write(Write::Resolve {
                batch: item.batch,
                seq: item.seq,
                state,
                note: note.clone(),
            })
            .await?;
        if item.batch == ctx.batch.id && state == ItemState::Done {
            ctx.reporter.event(&Event::Done {
                seq: item.seq,
                kind: item.op.kind(),
                amount: item.op.amount(),
                note: Some(note),
            });
        }
    }
    // A focus item with no verdict (a bonus whose state the table did not cover) is not
    // shown applied.
    if focus.is_some() && focus_verdict.is_none() {
        focus_verdict = Some(Verdict::NotApplied(
            "the platform does not show it applied".into(),
        ));
    }
    Ok(Ok(focus_verdict))
}

fn unresolved(q: &crate::op::QualRef) -> PlatformError {
    PlatformError {
        class: ErrorClass::Refused,
        code: None,
        message: format!("the qualification type {q} was not resolved before the run"),
    }
}

/// Sends every pending operation of the batch, a page at a time from the journal.
async fn dispatch<P: Platform>(ctx: &Arc<Ctx<P>>) -> Result<(), JournalError> {
    let batch = ctx.batch.id;
    let slots = Arc::new(Semaphore::new(ctx.cfg.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut first_error = None;
    let mut after = None;
    'pages: while !ctx.stop.is_stopped() {
        let page = ctx
            .journal
            .read(move |c| items_page(c, batch, after, PAGE, ItemFilter::State(ItemState::Pending)))
            .await?;
        let Some(last) = page.last() else {
            break;
        };
        after = Some(last.seq);
        for item in page {
            let permit = tokio::select! {
                biased;
                _ = ctx.stop.stopped() => break 'pages,
                p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            };
            let task_ctx = ctx.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let _group = task_ctx.locks.lock(item.op.group()).await;
                process(&task_ctx, item).await
            });
            // Reap finished tasks as we go so a long batch does not accumulate them.
            while let Some(done) = tasks.try_join_next() {
                if let Err(e) = done.expect("operation tasks do not panic") {
                    ctx.stop.stop(StopReason::Journal(e.to_string()));
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done.expect("operation tasks do not panic") {
            ctx.stop.stop(StopReason::Journal(e.to_string()));
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One operation's life in this run: send, and act on the answer as [`after_answer`] says.
async fn process<P: Platform>(ctx: &Ctx<P>, item: ItemRecord) -> Result<(), JournalError> {
    let seq = item.seq;
    let batch = ctx.batch.id;
    let qualification = match item.op.qualification() {
        Some(q) => match ctx.quals.id(q) {
            Some(id) => Some(id),
            None => {
                let e = unresolved(q);
                return resolve(ctx, &item, ItemState::Failed, e.message).await;
            }
        },
        None => None,
    };
    let mut rng = fastrand::Rng::with_seed(ctx.cfg.seed ^ (u64::from(seq) << 20) ^ batch as u64);
    let mut maybe_applied = false;
    let mut faults = 0;
    let mut throttles = 0;
    let mut last_message = None;
    loop {
        if faults >= ctx.cfg.max_attempts || throttles >= ctx.cfg.max_attempts * 4 {
            return left_open(ctx, seq, last_message);
        }
        let sent = tokio::select! {
            biased;
            _ = ctx.stop.stopped() => return left_open(ctx, seq, last_message),
            sent = ctx.pacer.acquire() => sent,
        };
        let n = ctx
            .journal
            .write(Write::BeginAttempt { batch, seq })
            .await?;
        let call = Call {
            op: &item.op,
            qualification: qualification.as_ref(),
            token: item.token.as_deref(),
        };
        let result = ctx.platform.apply(call).await;
        let (state, next) = after_answer(
            item.op.kind(),
            maybe_applied,
            result.as_ref().map(|_| ()).map_err(|e| e.class),
        );
        let (outcome, message) = match &result {
            Ok(()) => ("done", None),
            Err(e) => (outcome_label(e.class), Some(e.to_string())),
        };
        // A refusal is the whole story of a failed operation: it is the note too.
        let note = (state == ItemState::Failed)
            .then(|| message.clone())
            .flatten();
        ctx.journal
            .write(Write::EndAttempt {
                batch,
                seq,
                n: n as u32,
                outcome,
                message: message.clone(),
                state,
                note,
            })
            .await?;
        let message = message.unwrap_or_default();
        match next {
            Next::Done => {
                if let Some(rate) = ctx.pacer.on_success(sent) {
                    ctx.reporter.event(&Event::RateChanged {
                        rate,
                        limit: ctx.pacer.limit_estimate(),
                    });
                }
                ctx.reporter.event(&Event::Done {
                    seq,
                    kind: item.op.kind(),
                    amount: item.op.amount(),
                    note: None,
                });
                return Ok(());
            }
            Next::Failed => {
                ctx.reporter.event(&Event::Failed {
                    seq,
                    origin: item.origin.clone(),
                    message,
                });
                return Ok(());
            }
            Next::Stop => {
                if let Err(e) = &result
                    && let ErrorClass::Systemic(kind) = e.class
                {
                    let reason = StopReason::Systemic(kind, message.clone());
                    if !ctx.stop.is_stopped() {
                        ctx.reporter.event(&Event::Stopping {
                            reason: reason.clone(),
                        });
                    }
                    ctx.stop.stop(reason);
                }
                return left_open(ctx, seq, Some(message));
            }
            Next::VerifyThenFail => {
                let note_if_not = if result
                    .as_ref()
                    .is_err_and(|e| e.class == ErrorClass::AlreadyDone)
                {
                    format!(
                        "{message} — but the platform does not show it applied. Check it on the requester website; payout will not send it again."
                    )
                } else {
                    message.clone()
                };
                return match verify_group(ctx, &item.op.group(), Some(&item), &mut rng).await? {
                    Ok(Some(Verdict::Applied(note))) => {
                        resolve(ctx, &item, ItemState::Done, note).await
                    }
                    Ok(_) => resolve(ctx, &item, ItemState::Failed, note_if_not).await,
                    Err(e) => left_open(ctx, seq, Some(format!("could not verify it: {e}"))),
                };
            }
            Next::Retry | Next::RetryThrottled | Next::VerifyThenRetry => {}
        }
        if next == Next::RetryThrottled {
            throttles += 1;
            if let Some(rate) = ctx.pacer.on_throttle(sent) {
                ctx.reporter.event(&Event::RateChanged {
                    rate,
                    limit: ctx.pacer.limit_estimate(),
                });
            }
        } else {
            faults += 1;
        }
        if next == Next::VerifyThenRetry {
            maybe_applied = true;
        }
        let delay = backoff(&ctx.cfg, faults + throttles, &mut rng);
        if let Err(e) = &result {
            ctx.reporter.event(&Event::Retrying {
                seq: Some(seq),
                class: e.class,
                message: message.clone(),
                delay,
            });
        }
        last_message = Some(message);
        tokio::select! {
            biased;
            _ = ctx.stop.stopped() => return left_open(ctx, seq, last_message),
            _ = tokio::time::sleep(delay) => {}
        }
        if maybe_applied {
            // Sent before without an answer that proves anything: the platform decides whether
            // it was applied before anything is sent again.
            match verify_group(ctx, &item.op.group(), Some(&item), &mut rng).await? {
                Ok(Some(Verdict::Applied(note))) => {
                    return resolve(ctx, &item, ItemState::Done, note).await;
                }
                Ok(_) => {
                    maybe_applied = false;
                    ctx.journal
                        .write(Write::Resolve {
                            batch,
                            seq,
                            state: ItemState::Pending,
                            note: "sent without an answer; the platform shows it not applied"
                                .into(),
                        })
                        .await?;
                }
                Err(e) => {
                    return left_open(ctx, seq, Some(format!("could not verify it: {e}")));
                }
            }
        }
    }
}

fn outcome_label(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::Throttled => "throttled",
        ErrorClass::NotSent => "not_sent",
        ErrorClass::Ambiguous => "no_answer",
        ErrorClass::AlreadyDone => "already_processed",
        ErrorClass::Refused => "refused",
        ErrorClass::Systemic(_) => "systemic",
    }
}

fn left_open<P>(ctx: &Ctx<P>, seq: u32, message: Option<String>) -> Result<(), JournalError> {
    ctx.reporter.event(&Event::LeftOpen { seq, message });
    Ok(())
}

/// Records an outcome established without sending (by verification), and reports it.
async fn resolve<P>(
    ctx: &Ctx<P>,
    item: &ItemRecord,
    state: ItemState,
    note: String,
) -> Result<(), JournalError> {
    ctx.journal
        .write(Write::Resolve {
            batch: item.batch,
            seq: item.seq,
            state,
            note: note.clone(),
        })
        .await?;
    ctx.reporter.event(&match state {
        ItemState::Done => Event::Done {
            seq: item.seq,
            kind: item.op.kind(),
            amount: item.op.amount(),
            note: Some(note),
        },
        _ => Event::Failed {
            seq: item.seq,
            origin: item.origin.clone(),
            message: note,
        },
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Systemic as S;

    #[test]
    fn the_life_of_an_operation_as_a_table() {
        use ErrorClass::*;
        use ItemState::*;
        let b = Kind::Bonus;
        type Case = (Kind, bool, Result<(), ErrorClass>, ItemState, Next);
        let cases: &[Case] = &[
            (b, false, Ok(()), Done, Next::Done),
            (b, true, Ok(()), Done, Next::Done),
            // Refused before applying: plainly pending, no verification needed.
            (b, false, Err(Throttled), Pending, Next::RetryThrottled),
            (b, false, Err(NotSent), Pending, Next::Retry),
            // ...unless an earlier attempt may have been applied.
            (b, true, Err(Throttled), Unknown, Next::RetryThrottled),
            (b, true, Err(NotSent), Unknown, Next::Retry),
            // A 5xx, a timeout, a dropped connection: verify before anything is sent again.
            (b, false, Err(Ambiguous), Unknown, Next::VerifyThenRetry),
            (b, false, Err(AlreadyDone), Unknown, Next::VerifyThenFail),
            (b, false, Err(Refused), Failed, Next::Failed),
            (b, true, Err(Refused), Unknown, Next::VerifyThenFail),
            (
                Kind::Revoke,
                false,
                Err(Refused),
                Pending,
                Next::VerifyThenFail,
            ),
            (
                Kind::Unblock,
                false,
                Err(Refused),
                Pending,
                Next::VerifyThenFail,
            ),
            (Kind::Score, false, Err(Refused), Failed, Next::Failed),
            (
                b,
                false,
                Err(Systemic(S::InsufficientFunds)),
                Pending,
                Next::Stop,
            ),
            (
                b,
                true,
                Err(Systemic(S::InsufficientFunds)),
                Unknown,
                Next::Stop,
            ),
        ];
        for (kind, maybe, answer, state, next) in cases {
            assert_eq!(
                after_answer(*kind, *maybe, *answer),
                (*state, *next),
                "{kind:?} maybe_applied={maybe} {answer:?}"
            );
        }
    }
}
