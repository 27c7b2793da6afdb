-- Not readable by 6 (no floor): its release writes compressed payloads.
-- Payloads are compressed (S2) by the instance that receives them, before
-- they are stored: JSON shrinks to 20–45%, so the database writes and
-- keeps less than half of it, and the work is spread over the requests
-- rather than done inside the commit. payload_codec says how a row's
-- payload is stored: '' as received (rows written before this migration),
-- 's2' an S2 block.
ALTER TABLE hw_deliveries ADD COLUMN payload_codec TEXT NOT NULL DEFAULT '';
