-- payout journal, schema version 4: platforms that pay in chunks, set up then paid (Prolific),
-- and an index of the items a resume must settle first.
-- A chunk's life is written ahead of each step: planned, set up (its id and the platform's own
-- amounts), "pay sent" (committed before the pay leaves), then the answer and what was observed.

-- Which platform a batch pays through, and in which currency. Every earlier batch is MTurk's.
ALTER TABLE batches ADD COLUMN platform TEXT NOT NULL DEFAULT 'mturk'
    CHECK (platform IN ('mturk', 'prolific'));
ALTER TABLE batches ADD COLUMN currency TEXT NOT NULL DEFAULT 'USD'
    CHECK (currency IN ('USD', 'GBP'));

-- Items sent without a known outcome (in flight, unknown): what a resume looks for first. With
-- only items_open, finding the few of a batch that has a million rows open walked them all.
CREATE INDEX items_unsettled ON items (batch_id, seq) WHERE state IN ('in_flight', 'unknown');

-- The rows of a chunked batch: one bonus to one submission of a study.
CREATE TABLE chunk_rows (
    batch_id       INTEGER NOT NULL REFERENCES batches (id),
    seq            INTEGER NOT NULL,           -- position in the plan
    line           INTEGER NOT NULL,           -- line in the file
    study_id       TEXT NOT NULL,
    submission_id  TEXT NOT NULL,
    participant_id TEXT,
    amount_minor   INTEGER NOT NULL CHECK (amount_minor > 0),
    reason         TEXT,                       -- kept for the report; Prolific shows no message
    chunk          INTEGER,                    -- the chunk it is in; NULL while pending
    state          TEXT NOT NULL CHECK (state IN
                     ('pending', 'chunked', 'paid', 'not_observed', 'failed', 'cancelled')),
    baseline       TEXT,                       -- the submission's bonus_payments before the pay
    finished_ms    INTEGER,
    note           TEXT,
    PRIMARY KEY (batch_id, seq)
) WITHOUT ROWID;
CREATE INDEX chunk_rows_open ON chunk_rows (batch_id, seq)
    WHERE state IN ('pending', 'chunked', 'not_observed');
CREATE INDEX chunk_rows_chunk ON chunk_rows (batch_id, chunk);
CREATE INDEX chunk_rows_submission ON chunk_rows (submission_id);

CREATE TABLE chunks (
    batch_id       INTEGER NOT NULL REFERENCES batches (id),
    chunk          INTEGER NOT NULL,
    study_id       TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('planned', 'set_up', 'pay_sent', 'accepted',
                     'unknown', 'observed', 'not_observed', 'void', 'failed')),
    bulk_id        TEXT,                       -- the set-up's id: the only id ever paid
    amount         TEXT,                       -- the platform's numbers, minor units, as given
    fees           TEXT,
    vat            TEXT,
    total          TEXT,
    planned_ms     INTEGER NOT NULL,
    set_up_ms      INTEGER,
    pay_sent_ms    INTEGER,
    answered_ms    INTEGER,
    settled_ms     INTEGER,
    answer         TEXT,                       -- what the pay's answer was, verbatim
    resolution     TEXT,                       -- an operator's word: 'paid' or 'not_paid'
    PRIMARY KEY (batch_id, chunk)
) WITHOUT ROWID;

-- Every id a set-up answered, paid or not: the report lists the ones never paid.
CREATE TABLE set_ups (
    bulk_id        TEXT PRIMARY KEY,
    batch_id       INTEGER NOT NULL REFERENCES batches (id),
    chunk          INTEGER NOT NULL,
    ms             INTEGER NOT NULL
) WITHOUT ROWID;

-- One row for each pay ever sent. Its key makes a second pay of the same id impossible to
-- record, so it is never sent, whatever the state table says.
CREATE TABLE pays (
    bulk_id        TEXT PRIMARY KEY,
    batch_id       INTEGER NOT NULL REFERENCES batches (id),
    chunk          INTEGER NOT NULL,
    sent_ms        INTEGER NOT NULL
) WITHOUT ROWID;
