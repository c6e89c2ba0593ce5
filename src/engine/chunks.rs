//! Runs a chunked batch (Prolific) exactly once: observe what earlier runs left in flight,
//! then set up and pay pending rows a chunk at a time — one money call at a time — and wait,
//! at most the settle time, for paid chunks to show on their submissions.
//!
//! Every step follows [`chunk_next`]; every step is committed to the journal before the next
//! call, and "pay sent" before the pay. A pay is sent only from a chunk that has just committed
//! it, so no path — a retry, a resume, a later run — sends the same id twice.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::chunk::{ChunkAction, ChunkEvent, Resolution, SetUpCheck, chunk_next, seen_paid};
use super::retry::{backoff, read_with_retries};
use super::{EngineConfig, StopReason, StopSignal};
use crate::ids::{StudyId, SubmissionId};
use crate::item::ChunkState;
use crate::journal::chunks::{
    ChunkRecord, ChunkRowRecord, ChunkWrite, RowState, chunks_of, next_chunk, prolific_status,
    rows_in_state, rows_of_chunk,
};
use crate::journal::{JournalError, JournalWriter, Write, now_ms};
use crate::money::{Cents, ExactMinor};
use crate::platform::{ChunkRow, ChunkedPlatform, ErrorClass, PlatformError};

/// How a chunked batch is run.
#[derive(Debug, Clone)]
pub struct ChunkConfig {
    /// Rows per set-up.
    pub chunk_size: usize,
    /// How long after "pay sent" a chunk's rows may take to show before it is not observed.
    pub settle: Duration,
    /// Pause between two read-backs of chunks that have not shown yet.
    pub poll: Duration,
    /// Set-up attempts per chunk (each lost or refused-before-applying one is free).
    pub set_up_attempts: u32,
    /// Submissions read back at once.
    pub read_concurrency: usize,
    /// Backoff and read retries, shared with the per-operation engine.
    pub engine: EngineConfig,
    /// The workspace's available balance read before this run's first pay: journaled with each
    /// pay as evidence for a chunk that is not observed.
    pub balance_before: Option<ExactMinor>,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig {
            chunk_size: 100,
            settle: Duration::from_secs(30 * 60),
            poll: Duration::from_secs(5),
            set_up_attempts: 8,
            read_concurrency: 16,
            engine: EngineConfig::default(),
            balance_before: None,
        }
    }
}

/// What a chunked run works with.
pub struct ChunkRun<P> {
    pub platform: Arc<P>,
    pub journal: Arc<JournalWriter>,
    pub batch: i64,
    pub cfg: ChunkConfig,
    pub stop: Arc<StopSignal>,
}

/// How a chunked run ended: its rows by state (the truth is in the journal).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChunkRunEnd {
    pub stop: Option<StopReason>,
    pub paid: u64,
    /// In chunks whose pay was sent (accepted or unknown), not yet seen.
    pub awaiting: u64,
    pub not_observed: u64,
    pub pending: u64,
    pub failed: u64,
}

fn error_text(e: &PlatformError) -> String {
    e.to_string()
}

/// Runs the batch: see the module documentation.
pub async fn execute_chunks<P: ChunkedPlatform>(
    run: ChunkRun<P>,
) -> Result<ChunkRunEnd, JournalError> {
    let mut rng = fastrand::Rng::with_seed(run.cfg.engine.seed);
    recover(&run).await?;
    loop {
        observe_all(&run, &mut rng).await?;
        if run.stop.is_stopped() {
            break;
        }
        // Chunks a crash left before their pay, then new chunks of rows whose submissions
        // are in no chunk that may still be paying.
        let chunk = match next_chunk_for(&run, Purpose::Pay).await? {
            Some(c) => c,
            None => {
                if !wait_for_awaiting(&run).await? {
                    break;
                }
                continue;
            }
        };
        send_chunk(&run, chunk, Purpose::Pay, &mut rng).await?;
    }
    summarise(&run).await
}

/// Sets up every pending row's chunk without paying any (set-ups are free): what a
/// confirmation shows is Prolific's own totals. Chunks already set up are kept.
pub async fn set_up_all<P: ChunkedPlatform>(run: &ChunkRun<P>) -> Result<(), JournalError> {
    let mut rng = fastrand::Rng::with_seed(run.cfg.engine.seed ^ 1);
    recover(run).await?;
    while !run.stop.is_stopped() {
        let Some(chunk) = next_chunk_for(run, Purpose::SetUp).await? else {
            break;
        };
        let before = chunk.chunk;
        send_chunk(run, chunk, Purpose::SetUp, &mut rng).await?;
        // A chunk still planned after its attempts (the run stops) ends the loop too.
        let batch = run.batch;
        let state = run
            .journal
            .read(move |c| {
                Ok(chunks_of(c, batch)?
                    .into_iter()
                    .find(|ch| ch.chunk == before))
            })
            .await?
            .map(|c| c.state);
        if state == Some(ChunkState::Planned) {
            break;
        }
    }
    Ok(())
}

/// After a crash or a stop: a chunk whose pay may have left without an answer is unknown, and
/// a chunk that reached a final state has its rows settled (a crash can fall between the two
/// writes).
async fn recover<P>(run: &ChunkRun<P>) -> Result<(), JournalError> {
    let batch = run.batch;
    let chunks = run.journal.read(move |c| chunks_of(c, batch)).await?;
    for ch in chunks {
        let (next, action) = chunk_next(ch.state, ChunkEvent::Reopened);
        if next != ch.state {
            set_state(run, ch.chunk, next, None, None).await?;
        }
        if action == ChunkAction::Settle {
            match next {
                ChunkState::Void => {
                    free_rows(
                        run,
                        ch.chunk,
                        RowState::Pending,
                        "its chunk was proven not paid: set up anew",
                    )
                    .await?
                }
                ChunkState::Failed => {
                    free_rows(
                        run,
                        ch.chunk,
                        RowState::Failed,
                        "its chunk's set-up was refused",
                    )
                    .await?
                }
                _ => {}
            }
        }
    }
    Ok(())
}

async fn set_state<P>(
    run: &ChunkRun<P>,
    chunk: u32,
    state: ChunkState,
    answer: Option<String>,
    resolution: Option<&'static str>,
) -> Result<(), JournalError> {
    run.journal
        .write(Write::Chunk(ChunkWrite::State {
            batch: run.batch,
            chunk,
            state,
            answer,
            resolution,
        }))
        .await
        .map(|_| ())
}

/// A chunk to send next, and — for a new one — the rows to plan into it.
struct ToSend {
    chunk: ChunkRecord,
    new_rows: Option<Vec<u32>>,
}

/// What a chunk is wanted for: set up only (before a confirmation), or set up and paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    SetUp,
    Pay,
}

/// The next chunk to work on: one left planned (or, to pay, set up) whose submissions no sent
/// pay may still reach, or a new chunk of pending rows.
async fn next_chunk_for<P>(
    run: &ChunkRun<P>,
    purpose: Purpose,
) -> Result<Option<ChunkRecord>, JournalError> {
    let batch = run.batch;
    let size = run.cfg.chunk_size.max(1);
    let found = run
        .journal
        .read(move |c| -> Result<Option<ToSend>, JournalError> {
            let chunks = chunks_of(c, batch)?;
            // Submissions that a sent pay may still reach: no other chunk may pay them now, or
            // its baseline could count the earlier payment as its own.
            let mut busy: HashSet<SubmissionId> = HashSet::new();
            for ch in chunks.iter().filter(|ch| ch.state.awaits_observation()) {
                for r in rows_of_chunk(c, batch, ch.chunk)? {
                    busy.insert(r.submission);
                }
            }
            for ch in chunks.iter().filter(|ch| match purpose {
                Purpose::SetUp => ch.state == ChunkState::Planned,
                Purpose::Pay => matches!(ch.state, ChunkState::Planned | ChunkState::SetUp),
            }) {
                let clear = purpose == Purpose::SetUp
                    || rows_of_chunk(c, batch, ch.chunk)?
                        .iter()
                        .all(|r| !busy.contains(&r.submission));
                if clear {
                    return Ok(Some(ToSend {
                        chunk: ch.clone(),
                        new_rows: None,
                    }));
                }
            }
            if purpose == Purpose::SetUp {
                busy.clear();
            }
            // Enough rows to fill a chunk past the busy ones; a short chunk is fine, never wrong.
            let pending = rows_in_state(c, batch, RowState::Pending, busy.len() + 2 * size)?;
            let mut picked: Vec<u32> = Vec::new();
            let mut in_chunk: HashSet<&SubmissionId> = HashSet::new();
            let mut study: Option<&StudyId> = None;
            for r in &pending {
                if picked.len() >= size {
                    break;
                }
                if busy.contains(&r.submission)
                    || in_chunk.contains(&r.submission)
                    || study.is_some_and(|s| s != &r.study)
                {
                    continue;
                }
                study = Some(&r.study);
                in_chunk.insert(&r.submission);
                picked.push(r.seq);
            }
            let Some(study) = study else {
                return Ok(None);
            };
            Ok(Some(ToSend {
                chunk: ChunkRecord {
                    batch,
                    chunk: next_chunk(c, batch)?,
                    study: study.clone(),
                    state: ChunkState::Planned,
                    bulk_id: None,
                    amount: None,
                    fees: None,
                    vat: None,
                    total: None,
                    pay_sent_ms: None,
                    answer: None,
                },
                new_rows: Some(picked),
            }))
        })
        .await?;
    let Some(ToSend { chunk, new_rows }) = found else {
        return Ok(None);
    };
    if let Some(seqs) = new_rows {
        run.journal
            .write(Write::Chunk(ChunkWrite::Plan {
                batch,
                chunk: chunk.chunk,
                study: chunk.study.clone(),
                seqs,
            }))
            .await?;
    }
    Ok(Some(chunk))
}

async fn rows_of<P>(run: &ChunkRun<P>, chunk: u32) -> Result<Vec<ChunkRowRecord>, JournalError> {
    let batch = run.batch;
    run.journal
        .read(move |c| rows_of_chunk(c, batch, chunk))
        .await
}

/// Drives one chunk from planned (or set up) to its pay's answer.
async fn send_chunk<P: ChunkedPlatform>(
    run: &ChunkRun<P>,
    mut ch: ChunkRecord,
    purpose: Purpose,
    rng: &mut fastrand::Rng,
) -> Result<(), JournalError> {
    let rows: Vec<ChunkRowRecord> = rows_of(run, ch.chunk)
        .await?
        .into_iter()
        .filter(|r| r.state == RowState::Chunked)
        .collect();
    let sum: Cents = rows.iter().map(|r| r.amount).sum();
    let mut attempt = 0;
    while ch.state == ChunkState::Planned {
        if run.stop.is_stopped() {
            return Ok(());
        }
        attempt += 1;
        let set_up_rows: Vec<ChunkRow> = rows
            .iter()
            .map(|r| ChunkRow {
                submission: r.submission.clone(),
                amount: r.amount,
            })
            .collect();
        let answer = run.platform.set_up(&ch.study, &set_up_rows).await;
        let event = match &answer {
            Ok(a) if a.amount == ExactMinor::from_whole(sum) => {
                ChunkEvent::SetUpAnswer(Ok(SetUpCheck::Matches))
            }
            Ok(_) => ChunkEvent::SetUpAnswer(Ok(SetUpCheck::Mismatch)),
            Err(e) => ChunkEvent::SetUpAnswer(Err(e.class)),
        };
        let (next, action) = chunk_next(ch.state, event);
        match (action, answer) {
            (ChunkAction::RecordBaselineAndCommit, Ok(a)) => {
                run.journal
                    .write(Write::Chunk(ChunkWrite::SetUp {
                        batch: run.batch,
                        chunk: ch.chunk,
                        answer: a.clone(),
                    }))
                    .await?;
                ch.bulk_id = Some(a.id);
                ch.amount = Some(a.amount);
                ch.state = next;
            }
            (ChunkAction::StopBatch, Ok(a)) => {
                // The platform's amount is not the chunk's: never pay it.
                let why = format!(
                    "the set-up of chunk {} answered an amount of {} minor units, the chunk adds up to {}; nothing was paid",
                    ch.chunk, a.amount, sum.0
                );
                run.journal
                    .write(Write::Chunk(ChunkWrite::SetUp {
                        batch: run.batch,
                        chunk: ch.chunk,
                        answer: a,
                    }))
                    .await?;
                set_state(run, ch.chunk, next, Some(why.clone()), None).await?;
                free_rows(run, ch.chunk, RowState::Pending, &why).await?;
                run.stop.stop(StopReason::Journal(why));
                return Ok(());
            }
            (ChunkAction::StopBatch, Err(e)) => {
                if let ErrorClass::Systemic(s) = e.class {
                    run.stop.stop(StopReason::Systemic(s, error_text(&e)));
                }
                return Ok(());
            }
            (ChunkAction::Settle, Err(e)) => {
                // Refused for these rows before anything was set up: they failed.
                set_state(run, ch.chunk, next, Some(error_text(&e)), None).await?;
                free_rows(run, ch.chunk, RowState::Failed, &error_text(&e)).await?;
                return Ok(());
            }
            (_, Err(e)) => {
                if attempt >= run.cfg.set_up_attempts {
                    // Left planned for a later run; nothing was stored, nothing can be paid.
                    run.stop.stop(StopReason::Journal(format!(
                        "chunk {} could not be set up after {attempt} attempts: {e}",
                        ch.chunk
                    )));
                    return Ok(());
                }
                let delay = backoff(&run.cfg.engine, attempt, rng);
                tokio::select! {
                    biased;
                    _ = run.stop.stopped() => return Ok(()),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            (_, Ok(_)) => unreachable!("a set-up's answer leads to a baseline or a stop"),
        }
    }
    if ch.state != ChunkState::SetUp || purpose == Purpose::SetUp {
        return Ok(());
    }
    // The baseline: what each submission shows before the pay.
    let mut baselines = Vec::with_capacity(rows.len());
    let reads = read_bonuses(
        run,
        rows.iter().map(|r| r.submission.clone()).collect(),
        rng,
    )
    .await;
    let reads = match reads {
        Ok(r) => r,
        Err(e) => {
            // Not paid and nothing sent: a later run takes a baseline again.
            if !run.stop.is_stopped() {
                run.stop.stop(StopReason::Journal(format!(
                    "could not read the submissions of chunk {} before paying it: {e}",
                    ch.chunk
                )));
            }
            return Ok(());
        }
    };
    for r in &rows {
        baselines.push((r.seq, reads.get(&r.submission).cloned().unwrap_or_default()));
    }
    if run.stop.is_stopped() {
        return Ok(());
    }
    run.journal
        .write(Write::Chunk(ChunkWrite::PaySent {
            batch: run.batch,
            chunk: ch.chunk,
            baselines,
            balance_before: run.cfg.balance_before,
        }))
        .await?;
    let (next, action) = chunk_next(ch.state, ChunkEvent::PayCommitted);
    debug_assert_eq!(action, ChunkAction::Pay);
    ch.state = next;
    let id = ch.bulk_id.clone().expect("a set-up chunk has its id");
    let answer = run.platform.pay(&id).await;
    let (next, action) = chunk_next(
        ch.state,
        ChunkEvent::PayAnswer(answer.as_ref().map(|_| ()).map_err(|e| e.class)),
    );
    let text = match &answer {
        Ok(()) => "accepted".to_owned(),
        Err(e) => error_text(e),
    };
    set_state(run, ch.chunk, next, Some(text.clone()), None).await?;
    if next == ChunkState::Void {
        free_rows(
            run,
            ch.chunk,
            RowState::Pending,
            &format!("the pay of {id} was refused ({text}): set up again"),
        )
        .await?;
    }
    if action == ChunkAction::StopBatch
        && let Err(PlatformError {
            class: ErrorClass::Systemic(s),
            ..
        }) = &answer
    {
        run.stop.stop(StopReason::Systemic(*s, text));
    }
    Ok(())
}

async fn free_rows<P>(
    run: &ChunkRun<P>,
    chunk: u32,
    state: RowState,
    note: &str,
) -> Result<(), JournalError> {
    run.journal
        .write(Write::Chunk(ChunkWrite::OpenRows {
            batch: run.batch,
            chunk,
            state,
            note: note.to_owned(),
        }))
        .await
        .map(|_| ())
}

/// Reads the bonuses of `subs` concurrently, each with the read retries.
async fn read_bonuses<P: ChunkedPlatform>(
    run: &ChunkRun<P>,
    subs: Vec<SubmissionId>,
    rng: &mut fastrand::Rng,
) -> Result<BTreeMap<SubmissionId, Vec<ExactMinor>>, PlatformError> {
    let mut out = BTreeMap::new();
    let mut set = JoinSet::new();
    let mut queue = subs.into_iter();
    let width = run.cfg.read_concurrency.max(1);
    let spawn = |set: &mut JoinSet<_>, s: SubmissionId, seed: u64| {
        let p = run.platform.clone();
        let cfg = run.cfg.engine.clone();
        let stop = run.stop.clone();
        set.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed);
            let r = read_with_retries(
                &cfg,
                None,
                Some(&stop),
                &mut rng,
                |_, _| {},
                || p.submission_bonuses(&s),
            )
            .await;
            (s, r)
        });
    };
    for _ in 0..width {
        if let Some(s) = queue.next() {
            spawn(&mut set, s, rng.u64(..));
        }
    }
    let mut first_err = None;
    while let Some(joined) = set.join_next().await {
        let (s, r) = joined.expect("a read task does not panic");
        match r {
            Ok(v) => {
                out.insert(s, v);
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
        if first_err.is_none()
            && let Some(s) = queue.next()
        {
            spawn(&mut set, s, rng.u64(..));
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Reads back every chunk whose pay was sent and not yet seen; decides each row by what its
/// submission shows; a chunk past its settle time with rows unseen is not observed.
async fn observe_all<P: ChunkedPlatform>(
    run: &ChunkRun<P>,
    rng: &mut fastrand::Rng,
) -> Result<(), JournalError> {
    let batch = run.batch;
    let chunks = run.journal.read(move |c| chunks_of(c, batch)).await?;
    for ch in chunks.into_iter().filter(|c| {
        matches!(
            c.state,
            ChunkState::Accepted | ChunkState::Unknown | ChunkState::NotObserved
        )
    }) {
        if run.stop.is_stopped() {
            return Ok(());
        }
        observe(run, ch, rng).await?;
    }
    Ok(())
}

async fn observe<P: ChunkedPlatform>(
    run: &ChunkRun<P>,
    ch: ChunkRecord,
    rng: &mut fastrand::Rng,
) -> Result<(), JournalError> {
    let open: Vec<ChunkRowRecord> = rows_of(run, ch.chunk)
        .await?
        .into_iter()
        .filter(|r| matches!(r.state, RowState::Chunked | RowState::NotObserved))
        .collect();
    let reads = match read_bonuses(
        run,
        open.iter().map(|r| r.submission.clone()).collect(),
        rng,
    )
    .await
    {
        Ok(r) => r,
        // Not read now: decided by a later read-back, never by a guess.
        Err(_) => return Ok(()),
    };
    let mut seen = Vec::new();
    for r in &open {
        let (Some(baseline), Some(now)) = (&r.baseline, reads.get(&r.submission)) else {
            continue;
        };
        if seen_paid(baseline, now, &[r.amount])[0] {
            seen.push(r.seq);
        }
    }
    let all_seen = seen.len() == open.len();
    if !seen.is_empty() {
        run.journal
            .write(Write::Chunk(ChunkWrite::RowsPaid {
                batch: run.batch,
                seqs: seen,
                note: format!(
                    "seen on its submission after bulk bonus payment {}",
                    ch.bulk_id.as_ref().map_or("?", |b| b.as_str())
                ),
            }))
            .await?;
    }
    let event = if all_seen {
        ChunkEvent::Observation { all_seen: true }
    } else if settle_passed(run, &ch) {
        ChunkEvent::SettleExpired
    } else {
        ChunkEvent::Observation { all_seen: false }
    };
    let (next, action) = chunk_next(ch.state, event);
    if next != ch.state {
        set_state(run, ch.chunk, next, None, None).await?;
    }
    if action == ChunkAction::ShowEvidence {
        free_rows(
            run,
            ch.chunk,
            RowState::NotObserved,
            &format!(
                "not seen on its submission {} after the pay of {} was sent; check Prolific, then `payout resolve`",
                humanise(run.cfg.settle),
                ch.bulk_id.as_ref().map_or("?", |b| b.as_str())
            ),
        )
        .await?;
    }
    Ok(())
}

fn settle_passed<P>(run: &ChunkRun<P>, ch: &ChunkRecord) -> bool {
    let sent = ch.pay_sent_ms.unwrap_or(0);
    now_ms().saturating_sub(sent) >= run.cfg.settle.as_millis() as i64
}

fn humanise(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 3600 && s.is_multiple_of(3600) => format!("{} h", s / 3600),
        s if s >= 60 && s.is_multiple_of(60) => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Waits one poll for chunks still awaited; `false` when there is nothing to wait for (or the
/// run is stopping), so the run ends.
async fn wait_for_awaiting<P>(run: &ChunkRun<P>) -> Result<bool, JournalError> {
    let batch = run.batch;
    let chunks = run.journal.read(move |c| chunks_of(c, batch)).await?;
    // A chunk past its settle time that could not be read stays as it is, for a later run.
    let waiting = chunks.iter().any(|c| {
        matches!(c.state, ChunkState::Accepted | ChunkState::Unknown) && !settle_passed(run, c)
    });
    if !waiting || run.stop.is_stopped() {
        return Ok(false);
    }
    tokio::select! {
        biased;
        _ = run.stop.stopped() => Ok(false),
        _ = tokio::time::sleep(run.cfg.poll) => Ok(true),
    }
}

/// How the batch stands now, counted the one way `payout status` counts it: a row in a chunk
/// not yet paid (or, by a crash, left in a final one) is pending, so a run never reports as
/// done what it did not decide.
async fn summarise<P>(run: &ChunkRun<P>) -> Result<ChunkRunEnd, JournalError> {
    let batch = run.batch;
    let s = run
        .journal
        .read(move |c| prolific_status(c, batch))
        .await?
        .ok_or_else(|| JournalError::Write(format!("batch {batch} is not a chunked batch")))?;
    Ok(ChunkRunEnd {
        stop: run.stop.reason(),
        paid: s.paid,
        awaiting: s.awaiting,
        not_observed: s.not_observed,
        pending: s.pending,
        failed: s.failed,
    })
}

/// An operator's word on a batch's chunks that were not observed (`payout resolve`): their
/// open rows return to pending (`NotPaid`: set up anew and paid by the next run) or are paid.
/// `only` limits it to one chunk. Answers how many rows changed.
pub async fn resolve_not_observed(
    journal: &JournalWriter,
    batch: i64,
    only: Option<u32>,
    resolution: Resolution,
) -> Result<u64, JournalError> {
    let chunks = journal.read(move |c| chunks_of(c, batch)).await?;
    let mut changed = 0;
    for ch in chunks
        .into_iter()
        .filter(|c| c.state == ChunkState::NotObserved && only.is_none_or(|o| o == c.chunk))
    {
        let chunk = ch.chunk;
        let open: Vec<u32> = journal
            .read(move |c| rows_of_chunk(c, batch, chunk))
            .await?
            .into_iter()
            .filter(|r| r.state == RowState::NotObserved)
            .map(|r| r.seq)
            .collect();
        let (next, _) = chunk_next(ch.state, ChunkEvent::Operator(resolution));
        let word = match resolution {
            Resolution::NotPaid => "not_paid",
            Resolution::Paid => "paid",
        };
        match resolution {
            Resolution::NotPaid => {
                journal
                    .write(Write::Chunk(ChunkWrite::OpenRows {
                        batch,
                        chunk,
                        state: RowState::Pending,
                        note: "the operator found it not paid: set up anew".into(),
                    }))
                    .await?;
            }
            Resolution::Paid => {
                journal
                    .write(Write::Chunk(ChunkWrite::RowsPaid {
                        batch,
                        seqs: open.clone(),
                        note: "marked paid by the operator (payout resolve --paid)".into(),
                    }))
                    .await?;
            }
        }
        journal
            .write(Write::Chunk(ChunkWrite::State {
                batch,
                chunk,
                state: next,
                answer: None,
                resolution: Some(word),
            }))
            .await?;
        changed += open.len() as u64;
    }
    Ok(changed)
}

/// Before a cancel: what a crash left is recovered and every chunk whose pay was sent is read
/// back once, so that only what is proven (or still unknown) is left to decide.
pub async fn observe_sent<P: ChunkedPlatform>(run: &ChunkRun<P>) -> Result<(), JournalError> {
    let mut rng = fastrand::Rng::with_seed(run.cfg.engine.seed ^ 2);
    recover(run).await?;
    observe_all(run, &mut rng).await
}

/// `payout cancel`: every chunk not yet paid becomes void (its set-up is never paid) and its
/// rows, like the rows in no chunk, are closed. A chunk whose pay may have left is untouched
/// (the table ignores the event there).
pub async fn cancel_unpaid<P>(run: &ChunkRun<P>) -> Result<(), JournalError> {
    let batch = run.batch;
    let chunks = run.journal.read(move |c| chunks_of(c, batch)).await?;
    for ch in chunks {
        let (next, action) = chunk_next(ch.state, ChunkEvent::Cancelled);
        if action == ChunkAction::Settle {
            set_state(run, ch.chunk, next, None, None).await?;
            free_rows(
                run,
                ch.chunk,
                RowState::Cancelled,
                "the batch was cancelled before this chunk was paid",
            )
            .await?;
        }
    }
    run.journal
        .write(Write::Chunk(ChunkWrite::CancelPending { batch }))
        .await
        .map(|_| ())
}

#[cfg(test)]
#[path = "chunks_scripted.rs"]
mod scripted;
