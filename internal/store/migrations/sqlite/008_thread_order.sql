-- Not readable by 7 (no floor): a hookwise at 7 would move a thread's latest
-- delivery without its latest_updated.
-- A thread's deliveries are ordered by when GitHub last updated the thread's
-- object as each payload shows it (its updated_at), then by delivery id: a
-- redelivery of an old event (the sweep's, after an outage) gets a new id
-- but keeps its old updated_at, and must not pass for the thread's newest
-- state. Unix milliseconds; 0 for threads noted before this migration.
ALTER TABLE hw_threads ADD COLUMN latest_updated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hw_threads ADD COLUMN analysed_updated INTEGER NOT NULL DEFAULT 0;
