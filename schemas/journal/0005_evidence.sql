-- payout journal, schema version 5: the evidence a chunk that was not observed is shown with.
-- The workspace's available balance as the run read it before its first pay (minor units, as
-- Prolific gave them), journaled with each pay it sent: with the balance read when the chunk is
-- not observed, it tells the operator whether money left the workspace.
ALTER TABLE chunks ADD COLUMN balance_before TEXT;
