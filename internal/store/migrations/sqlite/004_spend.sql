-- The thread a delivery was planned for ("" before planning, and for
-- deliveries that deserve no analysis).
ALTER TABLE hw_deliveries ADD COLUMN thread TEXT NOT NULL DEFAULT '';
-- When a delivery deferred by a budget may be tried again (ms; 0: not deferred).
ALTER TABLE hw_deliveries ADD COLUMN resume_at INTEGER NOT NULL DEFAULT 0;

-- One row per thread that has had a delivery planned for analysis: which
-- delivery is the newest (the one that will be analysed once the thread is
-- quiet) and what the last analysis saw, so a later event can tell whether
-- anything that matters changed.
CREATE TABLE hw_threads (
    thread            TEXT    PRIMARY KEY,
    latest_delivery   INTEGER NOT NULL,
    latest_at         INTEGER NOT NULL,
    analysed_delivery INTEGER NOT NULL DEFAULT 0,
    analysed_subject  TEXT    NOT NULL DEFAULT '',
    analysed_at       INTEGER NOT NULL DEFAULT 0
);

-- The usage and cost ledger: one row per model call. The row is written
-- before the call as a reservation of its estimated cost (outcome
-- 'reserved'), which budgets count, and settled with what the API reported
-- once the call returns. A reservation still unsettled after expires_at was
-- left by a crash; budgets keep counting it, as its call may have been billed.
CREATE TABLE hw_usage (
    id                 INTEGER PRIMARY KEY,
    created_at         INTEGER NOT NULL,
    settled_at         INTEGER NOT NULL DEFAULT 0,
    expires_at         INTEGER NOT NULL,
    delivery_id        INTEGER NOT NULL,
    repo               TEXT    NOT NULL,
    owner              TEXT    NOT NULL,
    installation_id    INTEGER NOT NULL DEFAULT 0,
    thread             TEXT    NOT NULL,
    event              TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    model              TEXT    NOT NULL,
    batch              INTEGER NOT NULL DEFAULT 0,
    outcome            TEXT    NOT NULL DEFAULT 'reserved',
    estimate_micros    INTEGER NOT NULL,
    input_tokens       INTEGER NOT NULL DEFAULT 0,
    output_tokens      INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_micros        INTEGER NOT NULL DEFAULT 0,
    latency_ms         INTEGER NOT NULL DEFAULT 0,
    request_id         TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX hw_usage_created ON hw_usage (created_at);
CREATE INDEX hw_usage_delivery ON hw_usage (delivery_id);

-- Every reservation first updates this one row, so that budget checks are
-- serialised across workers and, on PostgreSQL, across instances.
CREATE TABLE hw_budget_lock (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO hw_budget_lock (id, n) VALUES (1, 0);

-- Budget alerts: the key makes each threshold fire once per scope and
-- period, whichever instance sees it crossed.
CREATE TABLE hw_alerts (
    scope        TEXT    NOT NULL,
    period       TEXT    NOT NULL,
    threshold    INTEGER NOT NULL,
    spent_micros INTEGER NOT NULL,
    limit_micros INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (scope, period, threshold)
);
