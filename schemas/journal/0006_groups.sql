-- payout journal, schema version 6: participant groups, Prolific's qualifications and block
-- lists. A group batch is a 'qualification' batch on 'prolific'. Its rows are membership
-- changes, one per (group, participant); each call that carries rows is written before it is
-- sent, and a row is done only once the group's member list shows what the file asks.

-- The groups a batch changes, as the file named them, and Prolific's id for each. A group the
-- batch creates (--create-missing) is recorded 'intended' before its creation is sent: after a
-- crash it is looked for by name before it is ever created again.
CREATE TABLE member_groups (
    batch_id       INTEGER NOT NULL REFERENCES batches (id),
    key            INTEGER NOT NULL,           -- the group's number in the batch
    named          TEXT NOT NULL,              -- its name on Prolific (or to create it with)
    group_id       TEXT,                       -- Prolific's id; NULL while only intended
    created        TEXT CHECK (created IN ('intended', 'created')), -- NULL: it existed
    block_list     INTEGER NOT NULL DEFAULT 0, -- named with --block-list
    size_before    INTEGER,                    -- members when the batch was planned
    size_after     INTEGER,                    -- members at the last verification
    intended_ms    INTEGER,
    created_ms     INTEGER,
    verified_ms    INTEGER,
    PRIMARY KEY (batch_id, key)
) WITHOUT ROWID;
CREATE INDEX member_groups_id ON member_groups (group_id);

CREATE TABLE member_rows (
    batch_id       INTEGER NOT NULL REFERENCES batches (id),
    seq            INTEGER NOT NULL,           -- position in the plan
    line           INTEGER NOT NULL,           -- line in the file
    group_key      INTEGER NOT NULL,
    participant_id TEXT NOT NULL,
    action         TEXT NOT NULL CHECK (action IN ('add', 'remove')),
    -- pending: not sent (or proven not applied); sent: in a call whose answer proved nothing
    -- yet; answered: its call answered success; done: the member list shows it.
    state          TEXT NOT NULL CHECK (state IN
                     ('pending', 'sent', 'answered', 'done', 'failed', 'cancelled')),
    calls          INTEGER NOT NULL DEFAULT 0, -- calls that carried it
    last_call      INTEGER,
    sent_ms        INTEGER,
    finished_ms    INTEGER,
    error          TEXT,
    note           TEXT,
    PRIMARY KEY (batch_id, seq)
) WITHOUT ROWID;
CREATE INDEX member_rows_open ON member_rows (batch_id, group_key, seq)
    WHERE state IN ('pending', 'sent', 'answered');
CREATE INDEX member_rows_call ON member_rows (batch_id, last_call);
CREATE INDEX member_rows_participant ON member_rows (participant_id);

-- Every add or remove call, written before it is sent.
CREATE TABLE member_calls (
    batch_id       INTEGER NOT NULL REFERENCES batches (id),
    call           INTEGER NOT NULL,
    group_key      INTEGER NOT NULL,
    action         TEXT NOT NULL CHECK (action IN ('add', 'remove')),
    rows           INTEGER NOT NULL,
    sent_ms        INTEGER NOT NULL,
    answered_ms    INTEGER,
    outcome        TEXT CHECK (outcome IN ('applied', 'refused', 'unknown')),
    message        TEXT,
    PRIMARY KEY (batch_id, call)
) WITHOUT ROWID;
