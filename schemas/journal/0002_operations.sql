-- payout journal, schema version 2: one table of operations of every kind (bonuses,
-- qualification scores, revokes, blocks), batches that know which ledger they pay into,
-- qualification types created by payout, runs, and rehearsals.
-- Run by payout inside one transaction with foreign keys off; payout then fills the identity
-- hashes of the rows copied from version 1 (SQLite cannot compute them) and sets user_version.

-- Where a batch pays: its target and, for a testing endpoint, that endpoint. Two batches share
-- a ledger exactly when they pay into the same account on the same service.
ALTER TABLE batches ADD COLUMN ledger TEXT NOT NULL DEFAULT '';
UPDATE batches SET ledger = target || COALESCE('@' || endpoint, '');
-- A digest of the batch's content alone (not of its target): what a rehearsal proves.
-- NULL for batches recorded by version 1.
ALTER TABLE batches ADD COLUMN content_digest TEXT;
ALTER TABLE batches ADD COLUMN kind TEXT NOT NULL DEFAULT 'bonus'
    CHECK (kind IN ('bonus', 'qualification'));
-- Options that shaped the plan (JSON), e.g. {"allow_repeat":true}.
ALTER TABLE batches ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
-- NULL while open; 'cancelled' (payout cancel) or 'superseded' (a newer batch replaced it).
ALTER TABLE batches ADD COLUMN closed TEXT CHECK (closed IN ('cancelled', 'superseded'));
ALTER TABLE batches ADD COLUMN closed_by INTEGER REFERENCES batches (id);
ALTER TABLE batches ADD COLUMN closed_ms INTEGER;
CREATE INDEX batches_ledger ON batches (ledger, id);
CREATE INDEX batches_content ON batches (content_digest);

CREATE TABLE items_v2 (
    batch_id      INTEGER NOT NULL REFERENCES batches (id),
    seq           INTEGER NOT NULL,           -- position in the plan
    line          INTEGER NOT NULL,           -- line in the file
    col           TEXT,                       -- column, for files with one operation per cell
    kind          TEXT NOT NULL CHECK (kind IN ('bonus', 'score', 'revoke', 'block', 'unblock')),
    group_hash    INTEGER NOT NULL,           -- op::Group::hash64: verified together
    op_hash       INTEGER NOT NULL,           -- op::Operation::identity_hash: "the same operation"
    worker_id     TEXT NOT NULL,
    assignment_id TEXT,                       -- bonus
    amount_cents  INTEGER CHECK (amount_cents IS NULL OR amount_cents > 0),
    fee_cents     INTEGER,                    -- the platform's fee on it, when it costs one
    reason        TEXT,                       -- bonus (required), revoke, block, unblock
    qual_id       TEXT,                       -- qualification named by type ID
    qual_name     TEXT,                       -- qualification named by name
    value         INTEGER,                    -- score
    notify        INTEGER,                    -- score: 1 if the worker is e-mailed
    occurrence    INTEGER NOT NULL,
    token         TEXT,                       -- UniqueRequestToken, for calls that take one
    state         TEXT NOT NULL CHECK (state IN
                    ('pending', 'in_flight', 'unknown', 'done', 'failed', 'skipped', 'cancelled')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    first_sent_ms INTEGER,
    last_sent_ms  INTEGER,
    finished_ms   INTEGER,
    error         TEXT,                       -- last error text from the platform, if any
    note          TEXT,                       -- how the outcome was established
    PRIMARY KEY (batch_id, seq)
) WITHOUT ROWID;

INSERT INTO items_v2 (batch_id, seq, line, col, kind, group_hash, op_hash, worker_id,
                      assignment_id, amount_cents, fee_cents, reason, occurrence, token, state,
                      attempts, first_sent_ms, last_sent_ms, finished_ms, error, note)
SELECT batch_id, seq, line, NULL, 'bonus', 0, 0, worker_id, assignment_id, amount_cents,
       -- MTurk's fee: 20 %, at least one cent, half-up (as payout 0.1 computed it).
       MAX(1, (amount_cents * 20 + 50) / 100), reason, occurrence, token,
       CASE state WHEN 'paid' THEN 'done' ELSE state END,
       attempts, first_sent_ms, last_sent_ms, finished_ms, error, note
FROM items;

DROP TABLE items;
ALTER TABLE items_v2 RENAME TO items;
CREATE INDEX items_group ON items (group_hash);
CREATE INDEX items_op ON items (op_hash);
CREATE INDEX items_token ON items (token) WHERE token IS NOT NULL;
-- The runner's first call on resume comes through this index, not a scan.
CREATE INDEX items_open ON items (batch_id, seq) WHERE state IN ('pending', 'in_flight', 'unknown');

-- Qualification types payout looked up or created, per ledger: a creation is recorded before
-- its call, so a crash between the two never creates a type twice.
CREATE TABLE qualification_types (
    ledger        TEXT NOT NULL,
    name          TEXT NOT NULL,
    type_id       TEXT,                       -- NULL while a creation is under way
    state         TEXT NOT NULL CHECK (state IN ('creating', 'created', 'found')),
    batch_id      INTEGER REFERENCES batches (id),
    updated_ms    INTEGER NOT NULL,
    PRIMARY KEY (ledger, name)
) WITHOUT ROWID;

-- One row per run of a batch: when, how it ended, and the pace it found.
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    batch_id      INTEGER NOT NULL REFERENCES batches (id),
    started_ms    INTEGER NOT NULL,
    ended_ms      INTEGER,
    outcome       TEXT,
    pace          REAL,                       -- requests/s at the end
    limit_estimate REAL                       -- the platform's limit as measured, if it throttled
);
CREATE INDEX runs_batch ON runs (batch_id);

-- Rehearsals that allow a production run of the same content: a production dry run whose
-- read-only preflight passed. (A completed sandbox batch is a rehearsal by itself.)
CREATE TABLE rehearsals (
    id             INTEGER PRIMARY KEY,
    content_digest TEXT NOT NULL,
    ledger         TEXT NOT NULL,
    how            TEXT NOT NULL,             -- 'preflight'
    source         TEXT NOT NULL,
    recorded_ms    INTEGER NOT NULL
);
CREATE INDEX rehearsals_content ON rehearsals (content_digest);
