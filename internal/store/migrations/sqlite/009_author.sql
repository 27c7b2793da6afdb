-- readable by: 8
-- A hookwise at 8 does not cap authors: while a fleet is upgraded, the cap
-- counts the analyses of the newer instances only.
-- The per-author daily cap: one row per delivery the cap let through to
-- analysis, written by the transaction that counted the author's earlier
-- ones. author is a lower-case login. That transaction first updates the
-- author's row in hw_author_locks, so that one author's admissions are
-- serialised and concurrent workers cannot pass the cap together.
CREATE TABLE hw_author_admissions (
    delivery_id INTEGER PRIMARY KEY,
    author      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX hw_author_admissions_author ON hw_author_admissions (author, created_at);
CREATE TABLE hw_author_locks (author TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 0);
