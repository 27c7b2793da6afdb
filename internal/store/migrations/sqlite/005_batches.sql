-- Requests waiting for, or answered by, the Message Batches API: one row per
-- delivery of an event a repository marked as not urgent (batch_events).
-- usage_id is the delivery's reservation in hw_usage, settled when its
-- result is applied. request is the model request as JSON. A row is pending
-- until it is submitted (batch_id '' until then), submitted until its
-- batch's result is applied, then done (the answer is in hw_analyses) or
-- failed (the delivery is answered by the Messages API instead). Rows are
-- only ever finished from the state they were read in, so a result applied
-- twice counts once.
CREATE TABLE hw_batch_items (
    id          INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL UNIQUE,
    usage_id    INTEGER NOT NULL,
    request     TEXT    NOT NULL,
    batch_id    TEXT    NOT NULL DEFAULT '',
    state       TEXT    NOT NULL DEFAULT 'pending',
    error       TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX hw_batch_items_state ON hw_batch_items (state, batch_id, id);
