-- payout journal, schema version 3: imports that can be interrupted, and fewer indexes.

-- 0 while a batch's items are being imported: a crash in the middle leaves a batch that is
-- removed (nothing was ever sent for it) and imported again, never one with rows missing.
-- Batches recorded before version 3 were complete when recorded.
ALTER TABLE batches ADD COLUMN imported INTEGER NOT NULL DEFAULT 1;

-- Two indexes on items go. Their keys are random hashes, so every import wrote pages all over
-- them: with them, importing 1,000,000 rows took a minute.
--  * items_token: nothing ever looked an item up by its token (a token follows from the
--    operation).
--  * items_op: the same operation is always in the same group (worker and assignment, or
--    worker and qualification, or worker), so it is found through items_group, op_hash
--    telling the operation apart among the group's few items.
DROP INDEX IF EXISTS items_token;
DROP INDEX IF EXISTS items_op;
