-- Not readable by 1 (no floor): a hookwise at 1 enqueues each delivery's job
-- itself and leaves dispatched at 0, so the dispatcher would enqueue a second.
-- The delivery row is the outbox: the ingest commit writes only our row,
-- and the dispatcher (one River job at a time, on the leader) enqueues the
-- processing job of every row not yet dispatched. A delivery can never be
-- left without its job, whatever happens to a job.
ALTER TABLE hw_deliveries ADD COLUMN dispatched INTEGER NOT NULL DEFAULT 0;
CREATE INDEX hw_deliveries_undispatched ON hw_deliveries (id) WHERE dispatched = 0;
