-- readable by: 9
-- A submission's intent, recorded before the Message Batches API is asked to
-- create its batch, so that a crash between the create and recording the
-- batch's id never submits the same requests twice. An item moves from
-- pending to 'submitting' with the attempt (random, one per submission),
-- the custom id its request is sent under (which holds the attempt) and the
-- time (milliseconds); then to submitted once its batch's id is recorded.
-- An item still submitting after a crash is matched to a batch the API
-- created after that time by its custom id, never submitted blindly again.
ALTER TABLE hw_batch_items ADD COLUMN attempt TEXT NOT NULL DEFAULT '';
ALTER TABLE hw_batch_items ADD COLUMN custom_id TEXT NOT NULL DEFAULT '';
ALTER TABLE hw_batch_items ADD COLUMN attempted_at INTEGER NOT NULL DEFAULT 0;
-- Whether a batch the API lists is one hookwise recorded.
CREATE INDEX hw_batch_items_batch ON hw_batch_items (batch_id);
