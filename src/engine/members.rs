//! The engine of participant-group batches: every membership change a batch asks, exactly as
//! asked. A round reads each group's whole member list, marks done every row it shows done
//! (an add of a member, a remove of a non-member — whether this batch sent it or not), and
//! sends the rest in calls of many participants, each call written to the journal before it
//! leaves. Adds and removes are idempotent, so a row the list does not show is simply sent
//! again; a row is never done on a call's answer alone, only on the member list. PATCH (which
//! overwrites a group's membership) is never used.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::{EngineConfig, StopReason, StopSignal, backoff, read_with_retries};
use crate::ids::GroupId;
use crate::item::{MemberAction, MemberState};
use crate::journal::members::{CallOutcome, MemberRowRecord, MemberWrite, group_status};
use crate::journal::{JournalError, JournalWriter, Write};
use crate::platform::prolific::is_not_found;
use crate::platform::{ErrorClass, GroupPlatform, PlatformError};

/// Participants in one add or remove call. Prolific documents no limit; this is payout's
/// choice, named once.
pub const MEMBERS_PER_CALL: usize = 100;

/// How a group batch is run.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    pub per_call: usize,
    /// Calls in flight at once (group calls are not money calls).
    pub at_once: usize,
    /// Rounds of read-then-send at most in one run; the last one only reads.
    pub rounds: u32,
    /// Attempts of one call that was throttled or never reached Prolific.
    pub call_attempts: u32,
    /// Backoff and read retries, shared with the other engines.
    pub engine: EngineConfig,
}

impl Default for MemberConfig {
    fn default() -> Self {
        MemberConfig {
            per_call: MEMBERS_PER_CALL,
            at_once: 4,
            rounds: 6,
            call_attempts: 8,
            engine: EngineConfig::default(),
        }
    }
}

/// What a group run works with: every group of the batch has its id (creations come first).
pub struct MemberRun<P> {
    pub platform: Arc<P>,
    pub journal: Arc<JournalWriter>,
    pub batch: i64,
    /// (group key, id) of every group of the batch.
    pub groups: Vec<(u32, GroupId)>,
    pub cfg: MemberConfig,
    pub stop: Arc<StopSignal>,
}

/// How a group run ended: its rows by state (the truth is in the journal).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberRunEnd {
    pub stop: Option<StopReason>,
    pub done: u64,
    pub no_ops: u64,
    pub pending: u64,
    /// Sent, and not yet seen in the member list.
    pub unverified: u64,
    pub failed: u64,
}

/// What follows an add or remove call's answer: the one place that decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallStep {
    /// Applied: the next member list confirms each row.
    Applied,
    /// Refused before applying for every participant alike (throttled, never sent): the same
    /// call again after a pause.
    Again,
    /// Refused for something in it: halves are sent on their own, until the one Prolific
    /// refuses is alone (and failed).
    Split,
    /// Proves nothing: the member list decides (the rows are sent again only if it does not
    /// show them — adds and removes are idempotent).
    AskTheList,
    /// The group is not there any more (deleted): nothing more is sent to it; the next member
    /// list (a 404 too) closes its rows as failed.
    GroupGone,
    /// Refused for every call (the token): the run stops.
    Stop,
}

/// An answer → what follows.
pub fn call_next(answer: Result<(), &PlatformError>) -> CallStep {
    match answer {
        Ok(()) => CallStep::Applied,
        Err(e) => match e.class {
            ErrorClass::Throttled | ErrorClass::NotSent => CallStep::Again,
            // The group itself is not there (deleted): no participant of the call is at fault.
            ErrorClass::Refused if is_not_found(e) => CallStep::GroupGone,
            ErrorClass::Refused => CallStep::Split,
            ErrorClass::Ambiguous | ErrorClass::AlreadyDone => CallStep::AskTheList,
            ErrorClass::Systemic(_) => CallStep::Stop,
        },
    }
}

/// One call to make: rows of one group and one action.
#[derive(Debug, Clone)]
struct Job {
    group_key: u32,
    group: GroupId,
    action: MemberAction,
    rows: Vec<(u32, String)>,
    attempt: u32,
}

/// Runs every open row of the batch until the member lists show them all (or the rounds end).
pub async fn execute_members<P: GroupPlatform>(
    run: &MemberRun<P>,
) -> Result<MemberRunEnd, JournalError> {
    let mut rng = fastrand::Rng::with_seed(run.cfg.engine.seed);
    for round in 0..run.cfg.rounds {
        if run.stop.is_stopped() {
            break;
        }
        let mut jobs: VecDeque<Job> = VecDeque::new();
        for (key, group) in &run.groups {
            let key = *key;
            let batch = run.batch;
            let rows = run
                .journal
                .read(move |c| crate::journal::members::open_rows(c, batch, key))
                .await?;
            if rows.is_empty() {
                continue;
            }
            let members = match list_members(run, group, &mut rng).await {
                Listing::Members(m) => m,
                Listing::Gone(why) => {
                    run.journal
                        .write(Write::Members(MemberWrite::GroupGone {
                            batch,
                            group_key: key,
                            error: why,
                        }))
                        .await?;
                    continue;
                }
                Listing::Stopped => break,
            };
            let mut holds = Vec::new();
            let mut not_applied = Vec::new();
            let mut to_send: Vec<&MemberRowRecord> = Vec::new();
            for r in &rows {
                if r.action.holds(members.contains(&r.participant)) {
                    holds.push(r.seq);
                } else {
                    if r.state != MemberState::Pending {
                        not_applied.push(r.seq);
                    }
                    to_send.push(r);
                }
            }
            run.journal
                .write(Write::Members(MemberWrite::Verified {
                    batch,
                    group_key: key,
                    size: members.len() as u64,
                    holds,
                    not_applied,
                }))
                .await?;
            // The last round only reads: what it could not confirm stays for the next run.
            if round + 1 == run.cfg.rounds {
                continue;
            }
            for action in [MemberAction::Remove, MemberAction::Add] {
                let of: Vec<(u32, String)> = to_send
                    .iter()
                    .filter(|r| r.action == action)
                    .map(|r| (r.seq, r.participant.clone()))
                    .collect();
                for rows in of.chunks(run.cfg.per_call.max(1)) {
                    jobs.push_back(Job {
                        group_key: key,
                        group: group.clone(),
                        action,
                        rows: rows.to_vec(),
                        attempt: 0,
                    });
                }
            }
        }
        if jobs.is_empty() || run.stop.is_stopped() {
            break;
        }
        send_all(run, jobs, &mut rng).await?;
    }
    summarise(run).await
}

/// What reading a group's member list came to.
enum Listing {
    Members(std::collections::HashSet<String>),
    /// Prolific answered 404: the group is gone (deleted).
    Gone(String),
    /// It could not be read (and the run is stopped): nothing is sent for a group whose list
    /// cannot confirm it.
    Stopped,
}

/// A group's whole member list, with the read retries.
async fn list_members<P: GroupPlatform>(
    run: &MemberRun<P>,
    group: &GroupId,
    rng: &mut fastrand::Rng,
) -> Listing {
    let got = read_with_retries(
        &run.cfg.engine,
        None,
        Some(&run.stop),
        rng,
        |_, _| {},
        || run.platform.member_ids(group),
    )
    .await;
    match got {
        Ok(m) => Listing::Members(m),
        Err(e) if e.class == ErrorClass::Refused && is_not_found(&e) => Listing::Gone(format!(
            "group {group} no longer exists on Prolific (deleted?): {e}"
        )),
        Err(e) => {
            if !run.stop.is_stopped() {
                run.stop.stop(match e.class {
                    ErrorClass::Systemic(s) => {
                        StopReason::Systemic(s, format!("Prolific refused the token: {e}"))
                    }
                    _ => StopReason::Journal(format!(
                        "the member list of group {group} could not be read ({e}); nothing more was sent to it"
                    )),
                });
            }
            Listing::Stopped
        }
    }
}

/// Sends the calls of a round, `at_once` at a time; a call refused for something in it is
/// split, one throttled or never sent is sent again after a pause.
async fn send_all<P: GroupPlatform>(
    run: &MemberRun<P>,
    mut jobs: VecDeque<Job>,
    rng: &mut fastrand::Rng,
) -> Result<(), JournalError> {
    let batch = run.batch;
    let mut next = {
        run.journal
            .read(move |c| crate::journal::members::next_call(c, batch))
            .await?
    };
    let mut tasks: tokio::task::JoinSet<Result<Sent, JournalError>> = tokio::task::JoinSet::new();
    loop {
        while tasks.len() < run.cfg.at_once.max(1) && !run.stop.is_stopped() {
            let Some(job) = jobs.pop_front() else { break };
            let call = next;
            next += 1;
            let platform = run.platform.clone();
            let journal = run.journal.clone();
            let pause = if job.attempt > 0 {
                backoff(&run.cfg.engine, job.attempt, rng)
            } else {
                Duration::ZERO
            };
            tasks.spawn(async move {
                tokio::time::sleep(pause).await;
                send_one(&*platform, &journal, batch, call, job).await
            });
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let (job, step, error) = done.map_err(|e| JournalError::Write(e.to_string()))??;
        let message = error.as_ref().map(ToString::to_string);
        match step {
            CallStep::Applied | CallStep::AskTheList => {}
            CallStep::Again if job.attempt + 1 < run.cfg.call_attempts => jobs.push_back(Job {
                attempt: job.attempt + 1,
                ..job
            }),
            // Left pending: the next round (or run) sends it.
            CallStep::Again => {}
            CallStep::Split if job.rows.len() > 1 => {
                let (a, b) = job.rows.split_at(job.rows.len() / 2);
                for half in [a, b] {
                    jobs.push_back(Job {
                        rows: half.to_vec(),
                        attempt: 0,
                        ..job.clone()
                    });
                }
            }
            CallStep::Split => {
                run.journal
                    .write(Write::Members(MemberWrite::Fail {
                        batch,
                        seqs: job.rows.iter().map(|(s, _)| *s).collect(),
                        error: message.unwrap_or_default(),
                    }))
                    .await?;
            }
            // Its rows are pending again; the next member list (a 404) closes them.
            CallStep::GroupGone => jobs.retain(|j| j.group_key != job.group_key),
            CallStep::Stop => {
                if let Some(ErrorClass::Systemic(s)) = error.as_ref().map(|e| e.class)
                    && !run.stop.is_stopped()
                {
                    run.stop.stop(StopReason::Systemic(
                        s,
                        format!(
                            "Prolific refused the call for every participant: {}",
                            message.unwrap_or_default()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A call made: its job, what follows its answer, and the answer's error if it failed.
type Sent = (Job, CallStep, Option<PlatformError>);

/// One call: written before it is sent, its answer written after.
async fn send_one<P: GroupPlatform>(
    platform: &P,
    journal: &JournalWriter,
    batch: i64,
    call: u32,
    job: Job,
) -> Result<Sent, JournalError> {
    journal
        .write(Write::Members(MemberWrite::Send {
            batch,
            call,
            group_key: job.group_key,
            action: job.action,
            seqs: job.rows.iter().map(|(s, _)| *s).collect(),
        }))
        .await?;
    let ids: Vec<String> = job.rows.iter().map(|(_, p)| p.clone()).collect();
    let answer = platform.change_members(&job.group, job.action, &ids).await;
    let step = call_next(answer.as_ref().map(|_| ()));
    let error = answer.err();
    let outcome = match step {
        CallStep::Applied => CallOutcome::Applied,
        CallStep::AskTheList => CallOutcome::Unknown,
        CallStep::Again | CallStep::Split | CallStep::GroupGone | CallStep::Stop => {
            CallOutcome::Refused
        }
    };
    journal
        .write(Write::Members(MemberWrite::Answer {
            batch,
            call,
            outcome,
            message: error.as_ref().map(ToString::to_string),
        }))
        .await?;
    Ok((job, step, error))
}

async fn summarise<P>(run: &MemberRun<P>) -> Result<MemberRunEnd, JournalError> {
    let batch = run.batch;
    let s = run
        .journal
        .read(move |c| group_status(c, batch))
        .await?
        .unwrap_or_default();
    Ok(MemberRunEnd {
        stop: run.stop.reason(),
        done: s.done,
        no_ops: s.no_ops,
        pending: s.pending,
        unverified: s.unverified,
        failed: s.failed,
    })
}

/// Reads the member lists of a batch's groups and settles every row sent (done, or pending
/// again): what `payout cancel` does before it closes anything. Sends nothing.
pub async fn verify_members<P: GroupPlatform>(
    run: &MemberRun<P>,
) -> Result<MemberRunEnd, JournalError> {
    let mut cfg = run.cfg.clone();
    cfg.rounds = 1;
    let once = MemberRun {
        platform: run.platform.clone(),
        journal: run.journal.clone(),
        batch: run.batch,
        groups: run.groups.clone(),
        cfg,
        stop: run.stop.clone(),
    };
    execute_members(&once).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ParticipantId;
    use crate::journal::Journal;
    use crate::journal::members::{NewMemberGroup, NewMemberRow};
    use std::collections::{HashMap, HashSet};
    use std::sync::Mutex;

    /// What the scripted group does with the n-th change call.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Fault {
        /// Applied, answer lost.
        LostAfter,
        /// Not applied, connection dropped after sending (proves nothing).
        DropBefore,
        /// Refused (400) if it names this participant.
        RefuseIfHas(u32),
    }

    /// A group platform in memory: one group, idempotent adds and removes, scripted faults.
    #[derive(Default)]
    struct Scripted {
        members: Mutex<HashSet<String>>,
        faults: Mutex<HashMap<u32, Fault>>,
        calls: Mutex<u32>,
        /// How many change calls named each participant.
        named: Mutex<HashMap<String, u32>>,
        lists: Mutex<u32>,
    }

    fn err(class: ErrorClass) -> PlatformError {
        PlatformError {
            class,
            code: None,
            message: "scripted".into(),
        }
    }

    impl GroupPlatform for Scripted {
        async fn change_members(
            &self,
            _group: &GroupId,
            action: MemberAction,
            participants: &[String],
        ) -> Result<(), PlatformError> {
            let n = {
                let mut c = self.calls.lock().unwrap();
                *c += 1;
                *c
            };
            let fault = self.faults.lock().unwrap().get(&n).copied();
            if let Some(Fault::RefuseIfHas(p)) = fault
                && participants.contains(&pid(p))
            {
                return Err(err(ErrorClass::Refused));
            }
            if fault == Some(Fault::DropBefore) {
                return Err(err(ErrorClass::Ambiguous));
            }
            let mut m = self.members.lock().unwrap();
            for p in participants {
                *self.named.lock().unwrap().entry(p.clone()).or_default() += 1;
                match action {
                    MemberAction::Add => m.insert(p.clone()),
                    MemberAction::Remove => m.remove(p),
                };
            }
            if fault == Some(Fault::LostAfter) {
                return Err(err(ErrorClass::Ambiguous));
            }
            Ok(())
        }

        async fn member_ids(&self, _group: &GroupId) -> Result<HashSet<String>, PlatformError> {
            *self.lists.lock().unwrap() += 1;
            Ok(self.members.lock().unwrap().clone())
        }
    }

    fn pid(n: u32) -> String {
        format!("{n:024x}")
    }

    fn gid() -> GroupId {
        GroupId::parse(&format!("{:024x}", 0xabc)).unwrap()
    }

    /// A batch adding participants 0..adds and removing adds..adds+removes.
    fn journal_with(adds: u32, removes: u32) -> (tempfile::TempDir, Journal, i64) {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        let rows: Vec<NewMemberRow> = (0..adds + removes)
            .map(|n| NewMemberRow {
                line: u64::from(n) + 2,
                group_key: 0,
                participant: ParticipantId::parse(&pid(n)).unwrap(),
                action: if n < adds {
                    MemberAction::Add
                } else {
                    MemberAction::Remove
                },
            })
            .collect();
        let groups = [NewMemberGroup {
            named: "G".into(),
            group_id: Some(gid()),
            block_list: false,
            size_before: None,
        }];
        let b = j
            .record_group_batch("g", "f", "l", "s", false, false, &groups, &rows)
            .unwrap();
        (dir, j, b)
    }

    async fn run_it(j: &mut Journal, b: i64, p: Arc<Scripted>, per_call: usize) -> MemberRunEnd {
        j.with_writer(|w| async move {
            execute_members(&MemberRun {
                platform: p,
                journal: w,
                batch: b,
                groups: vec![(0, gid())],
                cfg: MemberConfig {
                    per_call,
                    at_once: 1,
                    engine: EngineConfig {
                        backoff_base: Duration::from_millis(1),
                        ..EngineConfig::default()
                    },
                    ..MemberConfig::default()
                },
                stop: Arc::new(StopSignal::default()),
            })
            .await
        })
        .await
        .unwrap()
    }

    #[test]
    fn every_answer_leads_to_one_step() {
        use crate::platform::Systemic;
        let e = |class, code: &str| PlatformError {
            class,
            code: Some(code.to_owned()),
            message: format!("{code}: scripted"),
        };
        let table = [
            (e(ErrorClass::Throttled, "HTTP 429"), CallStep::Again),
            (e(ErrorClass::NotSent, "connect"), CallStep::Again),
            (e(ErrorClass::Refused, "HTTP 400"), CallStep::Split),
            (e(ErrorClass::Refused, "HTTP 404"), CallStep::GroupGone),
            (e(ErrorClass::Ambiguous, "HTTP 502"), CallStep::AskTheList),
            (e(ErrorClass::AlreadyDone, "done"), CallStep::AskTheList),
            (
                e(ErrorClass::Systemic(Systemic::Credentials), "HTTP 401"),
                CallStep::Stop,
            ),
        ];
        assert_eq!(call_next(Ok(())), CallStep::Applied);
        for (answer, step) in &table {
            assert_eq!(call_next(Err(answer)), *step, "{answer:?}");
        }
    }

    /// A call applied whose answer was lost is confirmed by the member list and not sent again;
    /// one dropped before it applied is sent again; members already there cost no call.
    #[tokio::test]
    async fn the_member_list_decides_what_is_sent_again() {
        let (_d, mut j, b) = journal_with(6, 2);
        let p = Arc::new(Scripted::default());
        // Participant 0 is a member already; 7 (to remove) is one.
        p.members.lock().unwrap().extend([pid(0), pid(7)]);
        p.faults
            .lock()
            .unwrap()
            .extend([(1, Fault::LostAfter), (2, Fault::DropBefore)]);
        // Calls of 2: the remove of 6,7 first (lost after applying), then adds 1,2 (dropped).
        let end = run_it(&mut j, b, p.clone(), 2).await;
        assert_eq!(
            (end.done, end.pending, end.unverified),
            (8, 0, 0),
            "{end:?}"
        );
        assert_eq!(end.no_ops, 2, "0 was a member, and 6 was not one");
        let m = p.members.lock().unwrap().clone();
        let want: HashSet<String> = (0..6).map(pid).collect();
        assert_eq!(m, want);
        let named = p.named.lock().unwrap().clone();
        assert_eq!(named.get(&pid(0)), None, "a member already: nothing sent");
        assert_eq!(
            named.get(&pid(7)),
            Some(&1),
            "lost after applying: seen, not resent"
        );
        assert_eq!(
            named.get(&pid(1)),
            Some(&1),
            "dropped before applying: sent again once"
        );
        // A second run reads nothing more and sends nothing.
        let calls = *p.calls.lock().unwrap();
        let end = run_it(&mut j, b, p.clone(), 2).await;
        assert_eq!(end.done, 8);
        assert_eq!(*p.calls.lock().unwrap(), calls);
    }

    /// A call refused for one participant is split until that one is alone: it fails, every
    /// other row of the call is done.
    #[tokio::test]
    async fn a_refused_participant_is_isolated_and_the_rest_are_done() {
        let (_d, mut j, b) = journal_with(8, 0);
        let p = Arc::new(Scripted::default());
        {
            let mut f = p.faults.lock().unwrap();
            for n in 1..20 {
                f.insert(n, Fault::RefuseIfHas(5));
            }
        }
        let end = run_it(&mut j, b, p.clone(), 8).await;
        assert_eq!((end.done, end.failed), (7, 1), "{end:?}");
        assert!(!p.members.lock().unwrap().contains(&pid(5)));
    }
}
