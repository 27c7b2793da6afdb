-- The PostgreSQL twin of sqlite/008_thread_order.sql.
ALTER TABLE hw_threads ADD COLUMN latest_updated BIGINT NOT NULL DEFAULT 0;
ALTER TABLE hw_threads ADD COLUMN analysed_updated BIGINT NOT NULL DEFAULT 0;
