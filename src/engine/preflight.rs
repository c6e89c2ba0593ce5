//! Read-only preflight checks of a batch before it runs: every call reads, none writes, all go
//! through the shared pace and retries. What a dry run (and a production rehearsal) checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::quals::QualMap;
use super::retry::read_with_retries;
use super::{EngineConfig, StopSignal};
use crate::ids::{AssignmentId, QualificationTypeId, WorkerId};
use crate::money::Cents;
use crate::op::{Operation, Origin};
use crate::pace::Pacer;
use crate::platform::{ErrorClass, Platform, PlatformError, QualScore};

/// One thing preflight found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// The platform does not know the assignment.
    UnknownAssignment { origin: Origin, assignment: String },
    /// The assignment was done by another worker.
    OtherWorker {
        origin: Origin,
        assignment: String,
        worker: String,
        listed_worker: String,
    },
    /// The assignment already has a bonus of this amount (by payout, another tool or by hand).
    AlreadyBonused {
        origin: Origin,
        assignment: String,
        amount: Cents,
        listed_reason: String,
    },
    /// The platform does not know the worker.
    UnknownWorker { origin: Origin, worker: String },
    /// Most IDs are unknown: they probably belong to the other environment.
    OtherEnvironment { unknown: u64, checked: u64 },
    /// Scores and revokes that would change nothing: the worker already stands as asked.
    Unchanged { operations: u64 },
    /// A check could not be made.
    Unchecked { what: String, message: String },
}

impl Finding {
    /// Whether this finding fails the preflight (a rehearsal must have none).
    pub fn fails(&self) -> bool {
        !matches!(self, Finding::Unchecked { .. } | Finding::Unchanged { .. })
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::UnknownAssignment { origin, assignment } => {
                write!(f, "{origin}: assignment {assignment} does not exist")
            }
            Finding::OtherWorker {
                origin,
                assignment,
                worker,
                listed_worker,
            } => write!(
                f,
                "{origin}: assignment {assignment} was done by {listed_worker}, not {worker}"
            ),
            Finding::AlreadyBonused {
                origin,
                assignment,
                amount,
                listed_reason,
            } => write!(
                f,
                "{origin}: assignment {assignment} already has a bonus of {amount} ({listed_reason:?}): a probable double payment"
            ),
            Finding::UnknownWorker { origin, worker } => {
                write!(f, "{origin}: worker {worker} is not known here")
            }
            Finding::OtherEnvironment { unknown, checked } => write!(
                f,
                "{unknown} of {checked} IDs checked are unknown here: they probably belong to the other environment (a production ID in the sandbox, or the reverse)"
            ),
            Finding::Unchecked { what, message } => {
                write!(f, "{what} could not be checked: {message}")
            }
            Finding::Unchanged { operations } => write!(
                f,
                "{operations} of the scores and revokes would change nothing: those workers already stand as asked"
            ),
        }
    }
}

/// Checks `ops` (with their origins) against the platform, reading only. `checked` is called
/// after each check, for a progress bar. Findings come sorted by origin; IDs unknown in bulk
/// are reported once as the other environment's.
pub async fn preflight<P: Platform>(
    platform: Arc<P>,
    ops: &[(Origin, Operation)],
    quals: &QualMap,
    cfg: &EngineConfig,
    pacer: Arc<Pacer>,
    stop: Arc<StopSignal>,
    checked: Arc<dyn Fn() + Send + Sync>,
) -> Vec<Finding> {
    // One check per assignment (bonuses) and per (worker, qualification) (scores, revokes).
    let mut assignments: BTreeMap<AssignmentId, Vec<(Origin, WorkerId, Cents)>> = BTreeMap::new();
    // The state each score or revoke asks for: Some(value) granted, None revoked.
    let mut scores: BTreeMap<(WorkerId, QualificationTypeId), (Origin, Option<i32>)> =
        BTreeMap::new();
    for (origin, op) in ops {
        match op {
            Operation::Bonus {
                worker,
                assignment,
                amount,
                ..
            } => assignments.entry(assignment.clone()).or_default().push((
                origin.clone(),
                worker.clone(),
                *amount,
            )),
            Operation::Score {
                worker,
                qualification,
                value,
                ..
            } => {
                if let Some(id) = quals.id(qualification) {
                    scores
                        .entry((worker.clone(), id))
                        .or_insert_with(|| (origin.clone(), Some(*value)));
                }
            }
            Operation::Revoke {
                worker,
                qualification,
                ..
            } => {
                if let Some(id) = quals.id(qualification) {
                    scores
                        .entry((worker.clone(), id))
                        .or_insert_with(|| (origin.clone(), None));
                }
            }
            Operation::Block { .. } | Operation::Unblock { .. } => {}
        }
    }
    let mut tasks: JoinSet<(u64, Vec<Finding>)> = JoinSet::new();
    let mut findings = Vec::new();
    let (mut unknown, mut total) = (0u64, 0u64);
    // A finished task keeps its memory (sized for its whole future, SDK call included) until it
    // is joined: joined as they finish, at most `concurrency` are held, not one per check
    // (20,000 checks held ≈ 100 MB).
    let mut absorb = |done: Result<(u64, Vec<Finding>), tokio::task::JoinError>| {
        let (u, f) = done.expect("preflight tasks do not panic");
        unknown += u;
        total += 1;
        findings.extend(f);
    };
    for (assignment, rows) in assignments {
        while tasks.len() >= cfg.concurrency.max(1) {
            absorb(tasks.join_next().await.expect("not empty"));
        }
        let (platform, pacer, stop, cfg, checked) = (
            platform.clone(),
            pacer.clone(),
            stop.clone(),
            cfg.clone(),
            checked.clone(),
        );
        tasks.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(cfg.seed);
            let read = |_: &PlatformError, _| {};
            let found = read_with_retries(&cfg, Some(&pacer), Some(&stop), &mut rng, read, || {
                platform.assignment(&assignment)
            })
            .await;
            let mut out = Vec::new();
            let mut unknown = 0;
            match found {
                Ok(None) => {
                    unknown = 1;
                    for (origin, _, _) in &rows {
                        out.push(Finding::UnknownAssignment {
                            origin: origin.clone(),
                            assignment: assignment.to_string(),
                        });
                    }
                }
                Ok(Some(info)) => {
                    for (origin, worker, _) in &rows {
                        if info.worker != worker.as_str() {
                            out.push(Finding::OtherWorker {
                                origin: origin.clone(),
                                assignment: assignment.to_string(),
                                worker: worker.to_string(),
                                listed_worker: info.worker.clone(),
                            });
                        }
                    }
                    let listed =
                        read_with_retries(&cfg, Some(&pacer), Some(&stop), &mut rng, read, || {
                            platform.bonuses_for_assignment(&assignment)
                        })
                        .await;
                    match listed {
                        Ok(listed) => {
                            for (origin, worker, amount) in &rows {
                                if let Some(b) = listed.iter().find(|b| {
                                    b.worker == worker.as_str() && b.amount == Some(*amount)
                                }) {
                                    out.push(Finding::AlreadyBonused {
                                        origin: origin.clone(),
                                        assignment: assignment.to_string(),
                                        amount: *amount,
                                        listed_reason: b.reason.clone(),
                                    });
                                }
                            }
                        }
                        Err(e) => out.push(unchecked(&assignment, e)),
                    }
                }
                Err(e) if invalid_id(&e) => unknown = 1,
                Err(e) => out.push(unchecked(&assignment, e)),
            }
            checked();
            (unknown, out)
        });
    }
    for ((worker, id), (origin, wanted)) in scores {
        while tasks.len() >= cfg.concurrency.max(1) {
            absorb(tasks.join_next().await.expect("not empty"));
        }
        let (platform, pacer, stop, cfg, checked) = (
            platform.clone(),
            pacer.clone(),
            stop.clone(),
            cfg.clone(),
            checked.clone(),
        );
        tasks.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(cfg.seed);
            let now = read_with_retries(
                &cfg,
                Some(&pacer),
                Some(&stop),
                &mut rng,
                |_, _| {},
                || platform.qualification_score(&worker, &id),
            )
            .await;
            checked();
            match now {
                Ok(now) => {
                    let unchanged = match (wanted, now) {
                        (Some(v), QualScore::Granted(g)) => v == g,
                        (None, QualScore::Revoked | QualScore::None) => true,
                        _ => false,
                    };
                    let f = unchanged.then_some(Finding::Unchanged { operations: 1 });
                    (0, f.into_iter().collect())
                }
                Err(e) if invalid_id(&e) => (
                    1,
                    vec![Finding::UnknownWorker {
                        origin,
                        worker: worker.to_string(),
                    }],
                ),
                Err(e) => (0, vec![unchecked(&format!("{worker}'s {id}"), e)]),
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        absorb(done);
    }
    // Unchanged operations are one line, however many.
    let unchanged: u64 = findings
        .iter()
        .map(|f| match f {
            Finding::Unchanged { operations } => *operations,
            _ => 0,
        })
        .sum();
    findings.retain(|f| !matches!(f, Finding::Unchanged { .. }));
    if unchanged > 0 {
        findings.push(Finding::Unchanged {
            operations: unchanged,
        });
    }
    findings.sort_by(|a, b| origin_of(a).cmp(&origin_of(b)));
    // Thousands of lines saying the same thing help nobody: most IDs unknown is one finding.
    if total >= 3 && unknown * 2 > total {
        findings.retain(|f| {
            !matches!(
                f,
                Finding::UnknownAssignment { .. } | Finding::UnknownWorker { .. }
            )
        });
        findings.insert(
            0,
            Finding::OtherEnvironment {
                unknown,
                checked: total,
            },
        );
    }
    findings
}

fn origin_of(f: &Finding) -> Option<&Origin> {
    match f {
        Finding::UnknownAssignment { origin, .. }
        | Finding::OtherWorker { origin, .. }
        | Finding::AlreadyBonused { origin, .. }
        | Finding::UnknownWorker { origin, .. } => Some(origin),
        _ => None,
    }
}

/// The answer MTurk gives an ID it does not know in this environment.
fn invalid_id(e: &PlatformError) -> bool {
    e.class == ErrorClass::Refused
        && (e.message.contains("is not valid for the parameter")
            || e.message.contains("does not exist"))
}

fn unchecked(what: &dyn std::fmt::Display, e: PlatformError) -> Finding {
    Finding::Unchecked {
        what: what.to_string(),
        message: e.to_string(),
    }
}

/// Scores and revokes of one type from which [`not_holding`] lists the type's workers.
const LIST_TYPE_AT: usize = 100;

/// The groups of `ops` — states the journal says already hold — whose standing on the
/// platform shows otherwise (changed since, by hand or another tool). A standing that could
/// not be read leaves the journal's word (doing a grant again could e-mail the worker twice).
/// Reads only, through the shared pace and retries: one block list for every block and
/// unblock, one score per qualification, several at once.
pub async fn not_holding<P: Platform>(
    platform: Arc<P>,
    ops: &[Operation],
    quals: &QualMap,
    cfg: &EngineConfig,
) -> std::collections::HashSet<i64> {
    use super::verify::{Verdict, decide_block, decide_qualification};
    let mut out = std::collections::HashSet::new();
    let pacer = Arc::new(Pacer::new(cfg.pace));
    let mut rng = fastrand::Rng::with_seed(cfg.seed);
    if ops
        .iter()
        .any(|op| matches!(op, Operation::Block { .. } | Operation::Unblock { .. }))
    {
        let listed = read_with_retries(
            cfg,
            Some(&pacer),
            None,
            &mut rng,
            |_, _| {},
            || platform.blocked_workers(),
        )
        .await;
        if let Ok(list) = listed {
            let list: std::collections::HashSet<String> = list.into_iter().collect();
            for op in ops {
                if let Operation::Block { worker, .. } | Operation::Unblock { worker, .. } = op
                    && matches!(
                        decide_block(op, list.contains(worker.as_str())),
                        Verdict::NotApplied(_)
                    )
                {
                    out.insert(op.group().hash64());
                }
            }
        }
    }
    // A type with many of these states is listed (a page per 100 workers granted it) rather
    // than asked worker by worker.
    let mut per_type: BTreeMap<QualificationTypeId, usize> = BTreeMap::new();
    for op in ops {
        if let Some(id) = op.qualification().and_then(|q| quals.id(q)) {
            *per_type.entry(id).or_default() += 1;
        }
    }
    let mut listed: BTreeMap<QualificationTypeId, std::collections::HashMap<String, i32>> =
        BTreeMap::new();
    for (id, n) in per_type {
        if n < LIST_TYPE_AT {
            continue;
        }
        let granted = read_with_retries(
            cfg,
            Some(&pacer),
            None,
            &mut rng,
            |_, _| {},
            || platform.granted_workers(&id),
        )
        .await;
        if let Ok(Some(granted)) = granted {
            listed.insert(id, granted.into_iter().collect());
        }
    }
    let mut tasks: JoinSet<Option<i64>> = JoinSet::new();
    for op in ops {
        let (Some(q), worker) = (op.qualification(), op.worker()) else {
            continue;
        };
        let Some(id) = quals.id(q) else { continue };
        if let Some(granted) = listed.get(&id) {
            // Not listed as granted: revoked or never granted, the same to a decision.
            let now = granted
                .get(worker.as_str())
                .map_or(QualScore::None, |v| QualScore::Granted(*v));
            if matches!(decide_qualification(op, now), Verdict::NotApplied(_)) {
                out.insert(op.group().hash64());
            }
            continue;
        }
        // Joined as they finish, as the bonus checks are: at most `concurrency` held at once.
        while tasks.len() >= cfg.concurrency.max(1) {
            out.extend(
                tasks
                    .join_next()
                    .await
                    .expect("not empty")
                    .expect("standing checks do not panic"),
            );
        }
        let (platform, pacer, cfg, op, worker) = (
            platform.clone(),
            pacer.clone(),
            cfg.clone(),
            op.clone(),
            worker.clone(),
        );
        tasks.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(cfg.seed);
            let now = read_with_retries(
                &cfg,
                Some(&pacer),
                None,
                &mut rng,
                |_, _| {},
                || platform.qualification_score(&worker, &id),
            )
            .await
            .ok()?;
            matches!(decide_qualification(&op, now), Verdict::NotApplied(_))
                .then(|| op.group().hash64())
        });
    }
    while let Some(done) = tasks.join_next().await {
        out.extend(done.expect("standing checks do not panic"));
    }
    out
}
