-- readable by: 8
-- The PostgreSQL twin of sqlite/009_author.sql.
CREATE TABLE hw_author_admissions (
    delivery_id BIGINT PRIMARY KEY,
    author      TEXT   NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX hw_author_admissions_author ON hw_author_admissions (author, created_at);
CREATE TABLE hw_author_locks (author TEXT PRIMARY KEY, n BIGINT NOT NULL DEFAULT 0);
