-- See sqlite/003_reliability.sql.
ALTER TABLE hw_deliveries ADD COLUMN hook_target TEXT NOT NULL DEFAULT '';
CREATE TABLE hw_health (id INTEGER PRIMARY KEY, checked_at BIGINT NOT NULL);
CREATE INDEX hw_deliveries_status ON hw_deliveries (status, updated_at);
