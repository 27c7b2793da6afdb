-- Which kind of hook sent a delivery (X-GitHub-Hook-Installation-Target-Type:
-- repository, organization or integration), so the redelivery sweeper can
-- find the hooks to sweep from the deliveries it has seen.
ALTER TABLE hw_deliveries ADD COLUMN hook_target TEXT NOT NULL DEFAULT '';
-- One row that /readyz rewrites: a commit is the only proof that the
-- database still takes writes.
CREATE TABLE hw_health (id INTEGER PRIMARY KEY, checked_at INTEGER NOT NULL);
-- The dead letters are failed deliveries; list them without a scan.
CREATE INDEX hw_deliveries_status ON hw_deliveries (status, updated_at);
