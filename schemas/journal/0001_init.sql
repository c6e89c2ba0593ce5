-- payout journal, schema version 1.
-- Every payment intent is written (and committed) before its call, every outcome after it.
-- No credentials are ever stored here.

CREATE TABLE batches (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,       -- human handle, e.g. bonuses-3fa2c1
    fingerprint   TEXT NOT NULL,              -- plan digest: same file + target = same batch
    target        TEXT NOT NULL CHECK (target IN ('sandbox', 'production', 'emulator')),
    endpoint      TEXT,                       -- endpoint override, if any
    source        TEXT NOT NULL,              -- path of the CSV as given
    created_ms    INTEGER NOT NULL
);
CREATE INDEX batches_fingerprint ON batches (fingerprint);

CREATE TABLE items (
    batch_id      INTEGER NOT NULL REFERENCES batches (id),
    seq           INTEGER NOT NULL,           -- position in the plan
    line          INTEGER NOT NULL,           -- line in the CSV
    worker_id     TEXT NOT NULL,
    assignment_id TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL CHECK (amount_cents > 0),
    reason        TEXT NOT NULL,
    occurrence    INTEGER NOT NULL,
    token         TEXT NOT NULL,              -- UniqueRequestToken, derived from the content
    state         TEXT NOT NULL CHECK (state IN
                    ('pending', 'in_flight', 'unknown', 'paid', 'failed', 'skipped')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    first_sent_ms INTEGER,
    last_sent_ms  INTEGER,
    finished_ms   INTEGER,
    error         TEXT,                       -- last error text from MTurk, if any
    note          TEXT,                       -- how the outcome was established
    PRIMARY KEY (batch_id, seq)
) WITHOUT ROWID;
CREATE INDEX items_token ON items (token, state);
CREATE INDEX items_key ON items (worker_id, assignment_id, amount_cents);

CREATE TABLE attempts (
    batch_id      INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    n             INTEGER NOT NULL,           -- 1 for the first attempt
    sent_ms       INTEGER NOT NULL,
    done_ms       INTEGER,
    outcome       TEXT,                       -- NULL while in flight
    message       TEXT,
    PRIMARY KEY (batch_id, seq, n),
    FOREIGN KEY (batch_id, seq) REFERENCES items (batch_id, seq)
) WITHOUT ROWID;
