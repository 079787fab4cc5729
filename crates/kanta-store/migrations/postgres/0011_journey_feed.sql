-- kanta store, PostgreSQL schema 11 (see ../sqlite/0011_journey_feed.sql, which has the same
-- table and explains it): what the journey engine has yet to see. Ids come from a sequence and
-- may commit out of order; the engine never reads this table with a cursor, it claims rows
-- (FOR UPDATE SKIP LOCKED) and deletes what it handled, so a late commit is never skipped.
CREATE TABLE journey_feed (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    ref_id      BIGINT,
    time        BIGINT  NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT
);
CREATE INDEX journey_feed_customer ON journey_feed (customer_id);

-- When the send of a claimed message started (committed just before the SMTP transaction or
-- HTTP call). A message whose lease ran out in `sending` is in doubt only if its send had
-- started; one claimed in a batch but never started is simply claimable again. So a crash
-- leaves at most the sends in flight in doubt, not the whole claimed batch.
ALTER TABLE journey_messages ADD COLUMN started_at BIGINT;
