-- The PostgreSQL twin of sqlite/007_payload_codec.sql.
ALTER TABLE hw_deliveries ADD COLUMN payload_codec TEXT NOT NULL DEFAULT '';
-- A payload arrives compressed: the server must not try again. EXTERNAL
-- never compresses; the row stays in the heap while it fits under
-- toast_tuple_target (8160 bytes, set by 001: most payloads under 18 KB)
-- and goes to TOAST beyond it.
ALTER TABLE hw_deliveries ALTER COLUMN payload SET STORAGE EXTERNAL;
