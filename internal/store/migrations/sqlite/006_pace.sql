-- readable by: 5
-- A hookwise at 5 does not reserve its writes here: while a fleet is upgraded,
-- the shared window counts the newer instances' writes only.
-- The fleet's GitHub write window, on PostgreSQL shared by every instance:
-- one row per write start, reserved before the write (possibly in the
-- future, when the window is full), and one row per key that each
-- reservation locks first, so that two instances never take the same slot.
CREATE TABLE hw_write_keys (key TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0);
CREATE TABLE hw_write_slots (key TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX hw_write_slots_key_at ON hw_write_slots (key, at);
