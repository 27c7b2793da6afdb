-- Deliveries exactly as GitHub sent them. The unique key is what makes a
-- redelivery (same GUID, same hook) or a concurrent copy a no-op; it outlives
-- any job-level uniqueness window because rows stay until retention prunes them.
CREATE TABLE hw_deliveries (
    id              INTEGER PRIMARY KEY,
    hook_id         TEXT    NOT NULL DEFAULT '',
    guid            TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    action          TEXT    NOT NULL DEFAULT '',
    repo            TEXT    NOT NULL DEFAULT '',
    installation_id INTEGER NOT NULL DEFAULT 0,
    sender          TEXT    NOT NULL DEFAULT '',
    payload         BLOB    NOT NULL,
    received_at     INTEGER NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'queued',
    reason          TEXT    NOT NULL DEFAULT '',
    updated_at      INTEGER NOT NULL,
    UNIQUE (hook_id, guid)
);
CREATE INDEX hw_deliveries_received ON hw_deliveries (received_at);
CREATE INDEX hw_deliveries_guid ON hw_deliveries (guid);

-- One row per model answer, written before anything is posted so that a
-- retried job reuses it instead of paying for a second call.
CREATE TABLE hw_analyses (
    id            INTEGER PRIMARY KEY,
    delivery_id   INTEGER NOT NULL UNIQUE,
    repo          TEXT    NOT NULL,
    thread        INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    model         TEXT    NOT NULL,
    result        TEXT    NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cache_read_tokens  INTEGER NOT NULL,
    cost_micros   INTEGER NOT NULL,
    latency_ms    INTEGER NOT NULL,
    request_id    TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL
);
CREATE INDEX hw_analyses_thread ON hw_analyses (repo, thread);

-- The ledger of GitHub side effects: one row per comment hookwise owns,
-- keyed by what the comment answers (the same key is in its hidden marker).
CREATE TABLE hw_writes (
    key          TEXT    PRIMARY KEY,
    repo         TEXT    NOT NULL,
    thread       INTEGER NOT NULL,
    comment_id   INTEGER NOT NULL,
    delivery_id  INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- Short leases that keep two workers (or two instances) off one thread.
CREATE TABLE hw_thread_locks (
    thread     TEXT    PRIMARY KEY,
    owner      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
