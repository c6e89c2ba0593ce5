//! The journal of participant-group batches (Prolific's qualifications and block lists): their
//! groups (and the creations they intend), one row per (group, participant) change, and every
//! add or remove call, written before it is sent.
//!
//! Stores and answers; what an answer or a member list proves is decided in `engine::members`.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{Journal, JournalError, now_ms};
use crate::ids::{GroupId, ParticipantId};
use crate::item::{MemberAction, MemberState};

/// A group of a batch about to be recorded.
#[derive(Debug, Clone)]
pub struct NewMemberGroup {
    /// Its name on Prolific (or the name to create it with).
    pub named: String,
    /// Prolific's id; `None` for a group the batch creates.
    pub group_id: Option<GroupId>,
    pub block_list: bool,
    /// Members when the batch was planned (`None` for a group to create: it has none).
    pub size_before: Option<u64>,
}

/// A membership change about to be recorded.
#[derive(Debug, Clone)]
pub struct NewMemberRow {
    pub line: u64,
    /// The index of its group in the batch's groups.
    pub group_key: u32,
    pub participant: ParticipantId,
    pub action: MemberAction,
}

/// A group of a recorded batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberGroupRecord {
    pub key: u32,
    pub named: String,
    pub group_id: Option<String>,
    /// The batch creates it: its creation is intended (not known to be sent) or done.
    pub create: Option<CreateState>,
    pub block_list: bool,
    pub size_before: Option<u64>,
    pub size_after: Option<u64>,
}

/// Where the creation of a group (`--create-missing`) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateState {
    /// Recorded before the creation was sent: after a crash the group is looked for by name.
    Intended,
    Created,
}

/// A membership change of a recorded batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRowRecord {
    pub seq: u32,
    pub line: u64,
    pub group_key: u32,
    pub participant: String,
    pub action: MemberAction,
    pub state: MemberState,
    pub calls: u32,
    pub error: Option<String>,
    pub note: Option<String>,
}

/// What an add or remove call's answer proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// Success: the change was applied.
    Applied,
    /// Refused before applying: its rows are pending again (or failed, see [`MemberWrite::Fail`]).
    Refused,
    /// Nothing proven: its rows stay `sent` until the member list tells.
    Unknown,
}

impl CallOutcome {
    fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Applied => "applied",
            CallOutcome::Refused => "refused",
            CallOutcome::Unknown => "unknown",
        }
    }
}

/// Every change a group batch's run makes to the journal.
#[derive(Debug, Clone)]
pub enum MemberWrite {
    /// A group the batch creates now has Prolific's id (created, or found by name).
    Created {
        batch: i64,
        key: u32,
        group_id: String,
    },
    /// A call is about to be sent with these rows (committed before it leaves).
    Send {
        batch: i64,
        call: u32,
        group_key: u32,
        action: MemberAction,
        seqs: Vec<u32>,
    },
    /// The call's answer.
    Answer {
        batch: i64,
        call: u32,
        outcome: CallOutcome,
        message: Option<String>,
    },
    /// Rows Prolific refused on their own: not sent again.
    Fail {
        batch: i64,
        seqs: Vec<u32>,
        error: String,
    },
    /// A group's member list was read: these rows hold (done), these do not (pending again).
    Verified {
        batch: i64,
        group_key: u32,
        size: u64,
        holds: Vec<u32>,
        not_applied: Vec<u32>,
    },
    /// The group is gone (its member list answered 404): its open rows fail with `error`.
    GroupGone {
        batch: i64,
        group_key: u32,
        error: String,
    },
    /// `payout cancel`: pending rows are closed. Refused while any row's call is unverified.
    CancelPending { batch: i64 },
}

/// The open states ([`MemberState::is_open`]) as an SQL list, word for word the condition of
/// the partial index `member_rows_open` (schemas/journal/0006_groups.sql).
pub(crate) const MEMBER_OPEN_STATES: &str = "('pending', 'sent', 'answered')";

fn count_changed(n: usize, want: usize, what: &str) -> Result<(), JournalError> {
    if n == want {
        Ok(())
    } else {
        Err(JournalError::Write(format!(
            "{what}: expected to change {want} rows, changed {n}"
        )))
    }
}

pub(super) fn apply(tx: &Transaction<'_>, w: &MemberWrite) -> Result<i64, JournalError> {
    let now = now_ms();
    match w {
        MemberWrite::Created {
            batch,
            key,
            group_id,
        } => {
            let n = tx.execute(
                "UPDATE member_groups SET group_id = ?3, created = 'created', created_ms = ?4
                 WHERE batch_id = ?1 AND key = ?2 AND created = 'intended'",
                params![batch, key, group_id, now],
            )?;
            count_changed(n, 1, "record a created group")?;
        }
        MemberWrite::Send {
            batch,
            call,
            group_key,
            action,
            seqs,
        } => {
            tx.execute(
                "INSERT INTO member_calls (batch_id, call, group_key, action, rows, sent_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    batch,
                    call,
                    group_key,
                    action.as_str(),
                    seqs.len() as i64,
                    now
                ],
            )?;
            let mut up = tx.prepare_cached(
                "UPDATE member_rows SET state = 'sent', calls = calls + 1, last_call = ?3,
                        sent_ms = ?4
                 WHERE batch_id = ?1 AND seq = ?2 AND state = 'pending'",
            )?;
            let mut n = 0;
            for seq in seqs {
                n += up.execute(params![batch, seq, call, now])?;
            }
            count_changed(n, seqs.len(), "send a call")?;
        }
        MemberWrite::Answer {
            batch,
            call,
            outcome,
            message,
        } => {
            tx.execute(
                "UPDATE member_calls SET answered_ms = ?3, outcome = ?4, message = ?5
                 WHERE batch_id = ?1 AND call = ?2",
                params![batch, call, now, outcome.as_str(), message],
            )?;
            let (state, note) = match outcome {
                CallOutcome::Applied => ("answered", "Prolific answered the call applied"),
                CallOutcome::Refused => ("pending", "Prolific refused the call before applying it"),
                CallOutcome::Unknown => ("sent", "the call's answer proved nothing"),
            };
            tx.prepare_cached(
                "UPDATE member_rows SET state = ?3, note = ?4,
                        error = CASE WHEN ?5 IS NULL THEN error ELSE ?5 END
                 WHERE batch_id = ?1 AND last_call = ?2 AND state = 'sent'",
            )?
            .execute(params![batch, call, state, note, message])?;
        }
        MemberWrite::Fail { batch, seqs, error } => {
            let mut up = tx.prepare_cached(
                "UPDATE member_rows SET state = 'failed', error = ?3, finished_ms = ?4,
                        note = 'Prolific refused this participant'
                 WHERE batch_id = ?1 AND seq = ?2 AND state = 'pending'",
            )?;
            for seq in seqs {
                up.execute(params![batch, seq, error, now])?;
            }
        }
        MemberWrite::Verified {
            batch,
            group_key,
            size,
            holds,
            not_applied,
        } => {
            tx.execute(
                "UPDATE member_groups SET size_after = ?3, verified_ms = ?4
                 WHERE batch_id = ?1 AND key = ?2",
                params![batch, group_key, *size as i64, now],
            )?;
            // A row never sent was so already; one sent is seen applied.
            let mut done = tx.prepare_cached(&format!(
                "UPDATE member_rows SET state = 'done', finished_ms = ?3, error = NULL,
                        note = CASE
                          WHEN calls = 0 AND action = 'add' THEN 'already a member: nothing sent'
                          WHEN calls = 0 THEN 'not a member: nothing sent'
                          WHEN action = 'add' THEN 'added: seen in the group''s member list'
                          ELSE 'removed: no longer in the group''s member list' END
                 WHERE batch_id = ?1 AND seq = ?2 AND state IN {MEMBER_OPEN_STATES}"
            ))?;
            for seq in holds {
                done.execute(params![batch, seq, now])?;
            }
            let mut again = tx.prepare_cached(
                "UPDATE member_rows SET state = 'pending',
                        note = 'the member list does not show it: to be sent (again)'
                 WHERE batch_id = ?1 AND seq = ?2 AND state IN ('sent', 'answered')",
            )?;
            for seq in not_applied {
                again.execute(params![batch, seq])?;
            }
        }
        MemberWrite::GroupGone {
            batch,
            group_key,
            error,
        } => {
            tx.execute(
                &format!(
                    "UPDATE member_rows SET state = 'failed', error = ?3, finished_ms = ?4,
                        note = 'the group no longer exists on Prolific'
                     WHERE batch_id = ?1 AND group_key = ?2 AND state IN {MEMBER_OPEN_STATES}"
                ),
                params![batch, group_key, error, now],
            )?;
        }
        MemberWrite::CancelPending { batch } => {
            let unverified: i64 = tx.query_row(
                "SELECT COUNT(*) FROM member_rows WHERE batch_id = ?1
                 AND state IN ('sent', 'answered')",
                [batch],
                |r| r.get(0),
            )?;
            if unverified > 0 {
                return Err(JournalError::Write(format!(
                    "{unverified} membership changes were sent and not yet seen in their group's member list; the batch cannot be closed yet"
                )));
            }
            tx.execute(
                "UPDATE member_rows SET state = 'cancelled', finished_ms = ?2,
                        note = 'the batch was cancelled'
                 WHERE batch_id = ?1 AND state = 'pending'",
                params![batch, now],
            )?;
        }
    }
    Ok(0)
}

fn corrupt(what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        Box::new(JournalError::Write(what)),
    )
}

fn group_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<MemberGroupRecord> {
    let created: Option<String> = r.get(3)?;
    Ok(MemberGroupRecord {
        key: r.get(0)?,
        named: r.get(1)?,
        group_id: r.get(2)?,
        create: match created.as_deref() {
            None => None,
            Some("intended") => Some(CreateState::Intended),
            Some("created") => Some(CreateState::Created),
            Some(o) => return Err(corrupt(format!("unknown creation state {o:?}"))),
        },
        block_list: r.get::<_, i64>(4)? != 0,
        size_before: r.get::<_, Option<i64>>(5)?.map(|n| n as u64),
        size_after: r.get::<_, Option<i64>>(6)?.map(|n| n as u64),
    })
}

fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<MemberRowRecord> {
    let action: String = r.get(4)?;
    let state: String = r.get(5)?;
    Ok(MemberRowRecord {
        seq: r.get(0)?,
        line: r.get::<_, i64>(1)? as u64,
        group_key: r.get(2)?,
        participant: r.get(3)?,
        action: MemberAction::parse(&action)
            .ok_or_else(|| corrupt(format!("unknown action {action:?}")))?,
        state: MemberState::parse(&state)
            .ok_or_else(|| corrupt(format!("unknown member state {state:?}")))?,
        calls: r.get(6)?,
        error: r.get(7)?,
        note: r.get(8)?,
    })
}

const ROW_COLUMNS: &str = "seq, line, group_key, participant_id, action, state, calls, error, note";

/// The groups of `batch`, by key.
pub fn groups_of(conn: &Connection, batch: i64) -> Result<Vec<MemberGroupRecord>, JournalError> {
    let mut st = conn.prepare_cached(
        "SELECT key, named, group_id, created, block_list, size_before, size_after
         FROM member_groups WHERE batch_id = ?1 ORDER BY key",
    )?;
    let out = st
        .query_map([batch], group_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(out)
}

/// The rows of one group of `batch` that a run still has work for, in plan order.
pub fn open_rows(
    conn: &Connection,
    batch: i64,
    group_key: u32,
) -> Result<Vec<MemberRowRecord>, JournalError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM member_rows INDEXED BY member_rows_open
         WHERE batch_id = ?1 AND group_key = ?2 AND state IN {MEMBER_OPEN_STATES}
         ORDER BY seq"
    ))?;
    let out = st
        .query_map(params![batch, group_key], row_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(out)
}

/// The number the next call of `batch` takes.
pub fn next_call(conn: &Connection, batch: i64) -> Result<u32, JournalError> {
    let n: Option<u32> = conn.query_row(
        "SELECT MAX(call) FROM member_calls WHERE batch_id = ?1",
        [batch],
        |r| r.get(0),
    )?;
    Ok(n.map_or(0, |n| n + 1))
}

/// Whether `batch` is a participant-group batch.
pub fn is_group_batch(conn: &Connection, batch: i64) -> Result<bool, JournalError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM batches WHERE id = ?1 AND platform = 'prolific' AND kind = 'qualification'",
            [batch],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Another open group batch on `ledger` with an unfinished change for this participant in this
/// group — the group by its id, or by the name of one still to be created: its name.
pub fn open_elsewhere(
    conn: &Connection,
    ledger: &str,
    group_id: Option<&str>,
    named: &str,
    participant: &str,
    exclude: Option<i64>,
) -> Result<Option<String>, JournalError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT b.name FROM member_rows r INDEXED BY member_rows_participant
             JOIN member_groups g ON g.batch_id = r.batch_id AND g.key = r.group_key
             JOIN batches b ON b.id = r.batch_id
             WHERE r.participant_id = ?1
               AND (g.group_id = ?2 OR (g.group_id IS NULL AND g.named = ?5))
               AND b.ledger = ?3
               AND b.closed IS NULL AND r.state IN {MEMBER_OPEN_STATES}
               AND b.id IS NOT ?4
             LIMIT 1"
        ))?
        .query_row(
            params![participant, group_id, ledger, exclude, named],
            |r| r.get(0),
        )
        .optional()?)
}

/// Where a group batch stands.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GroupStatus {
    pub rows: u64,
    pub done: u64,
    /// Done without a call: the member list already showed what the file asks.
    pub no_ops: u64,
    pub pending: u64,
    /// Sent, not yet seen in the member list.
    pub unverified: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub groups: Vec<GroupLine>,
}

/// One group of a batch, in its status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GroupLine {
    pub named: String,
    pub group_id: Option<String>,
    pub created: bool,
    pub block_list: bool,
    pub adds: u64,
    pub removes: u64,
    pub size_before: Option<u64>,
    pub size_after: Option<u64>,
}

/// The status of `batch` if it is a group batch; `None` for any other.
pub fn group_status(conn: &Connection, batch: i64) -> Result<Option<GroupStatus>, JournalError> {
    if !is_group_batch(conn, batch)? {
        return Ok(None);
    }
    let mut s = GroupStatus::default();
    let mut st = conn.prepare_cached(
        "SELECT state, calls = 0, COUNT(*) FROM member_rows WHERE batch_id = ?1
         GROUP BY state, calls = 0",
    )?;
    let counts = st
        .query_map([batch], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, i64>(2)? as u64,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (state, unsent, n) in counts {
        s.rows += n;
        match MemberState::parse(&state) {
            Some(MemberState::Done) => {
                s.done += n;
                if unsent {
                    s.no_ops += n;
                }
            }
            Some(MemberState::Pending) => s.pending += n,
            Some(MemberState::Sent | MemberState::Answered) => s.unverified += n,
            Some(MemberState::Failed) => s.failed += n,
            Some(MemberState::Cancelled) => s.cancelled += n,
            None => {
                return Err(JournalError::Write(format!(
                    "unknown member state {state:?}"
                )));
            }
        }
    }
    let mut per = conn.prepare_cached(
        "SELECT SUM(action = 'add'), SUM(action = 'remove') FROM member_rows
         WHERE batch_id = ?1 AND group_key = ?2",
    )?;
    for g in groups_of(conn, batch)? {
        let (adds, removes): (Option<i64>, Option<i64>) =
            per.query_row(params![batch, g.key], |r| Ok((r.get(0)?, r.get(1)?)))?;
        s.groups.push(GroupLine {
            named: g.named,
            group_id: g.group_id,
            created: g.create.is_some(),
            block_list: g.block_list,
            adds: adds.unwrap_or(0) as u64,
            removes: removes.unwrap_or(0) as u64,
            size_before: g.size_before,
            size_after: g.size_after,
        });
    }
    Ok(Some(s))
}

/// Every row of a group batch in plan order, with its group, for `payout report`.
pub fn for_each_report_row(
    conn: &Connection,
    batch: i64,
    f: &mut dyn FnMut(&MemberRowRecord, &MemberGroupRecord) -> Result<(), JournalError>,
) -> Result<(), JournalError> {
    let groups = groups_of(conn, batch)?;
    let mut st = conn.prepare(&format!(
        "SELECT {ROW_COLUMNS} FROM member_rows WHERE batch_id = ?1 ORDER BY seq"
    ))?;
    let mut rows = st.query([batch])?;
    while let Some(r) = rows.next()? {
        let row = row_from(r)?;
        let group = groups
            .iter()
            .find(|g| g.key == row.group_key)
            .ok_or_else(|| JournalError::Write(format!("row {} names no group", row.seq)))?;
        f(&row, group)?;
    }
    Ok(())
}

impl Journal {
    /// Records a group batch, its groups and its rows in one transaction; answers its id.
    /// Groups to create are recorded `intended`: their creation is written before it is sent.
    #[allow(clippy::too_many_arguments)]
    pub fn record_group_batch(
        &mut self,
        name: &str,
        fingerprint: &str,
        ledger: &str,
        source: &str,
        skip_rehearsal: bool,
        emulator: bool,
        groups: &[NewMemberGroup],
        rows: &[NewMemberRow],
    ) -> Result<i64, JournalError> {
        let now = now_ms();
        let tx = self.conn_mut().transaction()?;
        let id = super::chunks::insert_prolific_batch(
            &tx,
            &super::chunks::ProlificBatch {
                name,
                fingerprint,
                ledger,
                source,
                kind: "qualification",
                // Group changes cost nothing; the column wants a currency.
                currency: crate::money::Currency::Gbp,
                skip_rehearsal,
                emulator,
            },
        )?;
        for (key, g) in groups.iter().enumerate() {
            let create = g.group_id.is_none();
            tx.execute(
                "INSERT INTO member_groups (batch_id, key, named, group_id, created, block_list,
                                            size_before, intended_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    key as u32,
                    g.named,
                    g.group_id.as_ref().map(GroupId::as_str),
                    create.then_some("intended"),
                    g.block_list,
                    g.size_before.map(|n| n as i64),
                    create.then_some(now),
                ],
            )?;
        }
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO member_rows (batch_id, seq, line, group_key, participant_id, action,
                                          state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')",
            )?;
            for (seq, r) in rows.iter().enumerate() {
                ins.execute(params![
                    id,
                    seq as u32,
                    r.line as i64,
                    r.group_key,
                    r.participant.as_str(),
                    r.action.as_str(),
                ])?;
            }
        }
        tx.commit()?;
        self.check_file()?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Write;

    fn journal() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.sqlite")).unwrap();
        (dir, j)
    }

    fn pid(n: u32) -> ParticipantId {
        ParticipantId::parse(&format!("{n:024x}")).unwrap()
    }

    fn batch(j: &mut Journal, create: bool) -> i64 {
        let groups = [NewMemberGroup {
            named: "Completed study 1".into(),
            group_id: (!create).then(|| GroupId::parse(&format!("{:024x}", 99)).unwrap()),
            block_list: false,
            size_before: Some(3),
        }];
        let rows: Vec<NewMemberRow> = (0..4)
            .map(|n| NewMemberRow {
                line: u64::from(n) + 2,
                group_key: 0,
                participant: pid(n),
                action: if n < 3 {
                    MemberAction::Add
                } else {
                    MemberAction::Remove
                },
            })
            .collect();
        j.record_group_batch(
            "g",
            "f",
            "prolific@x/y",
            "g.csv",
            false,
            false,
            &groups,
            &rows,
        )
        .unwrap()
    }

    fn states(j: &Journal, b: i64) -> Vec<&'static str> {
        let mut out = Vec::new();
        for_each_report_row(j.conn(), b, &mut |r, _| {
            out.push(r.state.as_str());
            Ok(())
        })
        .unwrap();
        out
    }

    /// A call is written before it is sent; its answer moves only the rows it carried; the
    /// member list decides done or pending again; a cancel waits for every sent row.
    #[test]
    fn a_rows_life_is_written_ahead_and_only_the_member_list_makes_it_done() {
        let (_dir, mut j) = journal();
        let b = batch(&mut j, false);
        let w = |j: &mut Journal, m: MemberWrite| j.write(&Write::Members(m)).unwrap();
        w(
            &mut j,
            MemberWrite::Send {
                batch: b,
                call: 0,
                group_key: 0,
                action: MemberAction::Add,
                seqs: vec![0, 1],
            },
        );
        assert_eq!(states(&j, b), ["sent", "sent", "pending", "pending"]);
        // A row already sent is not sent again by a second call (a bug would be refused).
        assert!(
            j.write(&Write::Members(MemberWrite::Send {
                batch: b,
                call: 1,
                group_key: 0,
                action: MemberAction::Add,
                seqs: vec![1, 2],
            }))
            .is_err()
        );
        w(
            &mut j,
            MemberWrite::Answer {
                batch: b,
                call: 0,
                outcome: CallOutcome::Unknown,
                message: Some("HTTP 502".into()),
            },
        );
        assert_eq!(states(&j, b), ["sent", "sent", "pending", "pending"]);
        assert!(
            j.write(&Write::Members(MemberWrite::CancelPending { batch: b }))
                .is_err(),
            "rows sent and unverified keep the batch open"
        );
        w(
            &mut j,
            MemberWrite::Verified {
                batch: b,
                group_key: 0,
                size: 4,
                holds: vec![0, 3],
                not_applied: vec![1],
            },
        );
        assert_eq!(states(&j, b), ["done", "pending", "pending", "done"]);
        let st = group_status(j.conn(), b).unwrap().unwrap();
        assert_eq!((st.done, st.no_ops, st.pending), (2, 1, 2), "{st:?}");
        assert_eq!(st.groups[0].size_after, Some(4));
        assert_eq!(next_call(j.conn(), b).unwrap(), 1);
        w(&mut j, MemberWrite::CancelPending { batch: b });
        assert_eq!(states(&j, b), ["done", "cancelled", "cancelled", "done"]);
    }

    /// The SQL lists are the states `is_open` names, and the partial indexes' conditions.
    #[test]
    fn the_open_states_are_one_list_in_code_sql_and_the_indexes() {
        let names: Vec<String> = MemberState::ALL
            .into_iter()
            .filter(|s| s.is_open())
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        assert_eq!(MEMBER_OPEN_STATES, format!("({})", names.join(", ")));
        assert!(
            include_str!("../../schemas/journal/0006_groups.sql")
                .contains(&format!("WHERE state IN {MEMBER_OPEN_STATES};"))
        );
        assert!(
            include_str!("../../schemas/journal/0004_chunks.sql").contains(&format!(
                "WHERE state IN {};",
                super::super::chunks::CHUNK_ROW_OPEN_STATES
            ))
        );
    }

    #[test]
    fn a_group_to_create_is_intended_until_its_id_is_recorded_once() {
        let (_dir, mut j) = journal();
        let b = batch(&mut j, true);
        let g = &groups_of(j.conn(), b).unwrap()[0];
        assert_eq!(
            (g.create, g.group_id.as_deref()),
            (Some(CreateState::Intended), None)
        );
        let id = format!("{:024x}", 7);
        let created = |j: &mut Journal| {
            j.write(&Write::Members(MemberWrite::Created {
                batch: b,
                key: 0,
                group_id: id.clone(),
            }))
        };
        created(&mut j).unwrap();
        assert!(created(&mut j).is_err(), "recorded once");
        let g = &groups_of(j.conn(), b).unwrap()[0];
        assert_eq!(g.create, Some(CreateState::Created));
        assert_eq!(g.group_id.as_deref(), Some(id.as_str()));
    }
}
