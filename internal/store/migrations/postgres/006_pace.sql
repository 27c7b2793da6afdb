-- readable by: 5
-- The PostgreSQL twin of sqlite/006_pace.sql.
-- The fleet's GitHub write window, on PostgreSQL shared by every instance:
-- one row per write start, reserved before the write (possibly in the
-- future, when the window is full), and one row per key that each
-- reservation locks first, so that two instances never take the same slot.
CREATE TABLE hw_write_keys (key TEXT PRIMARY KEY, n BIGINT NOT NULL DEFAULT 0);
CREATE TABLE hw_write_slots (key TEXT NOT NULL, at BIGINT NOT NULL);
CREATE INDEX hw_write_slots_key_at ON hw_write_slots (key, at);
