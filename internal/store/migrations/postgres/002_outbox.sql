-- See sqlite/002_outbox.sql.
ALTER TABLE hw_deliveries ADD COLUMN dispatched INTEGER NOT NULL DEFAULT 0;
CREATE INDEX hw_deliveries_undispatched ON hw_deliveries (id) WHERE dispatched = 0;
