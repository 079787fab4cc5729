-- kanta store, SQLite schema 11 (../postgres/0011_journey_feed.sql has the same table): what the
-- journey engine has yet to see. New orders and events, stage changes and segment transitions
-- are copied here in the transaction that writes them — only while some journey is active, so
-- a store without journeys pays nothing — and the engine claims rows with a lease, acts on
-- them (entries, exits, woken waits) and deletes them. A row is never lost to a crash between
-- the write and the engine: it stays until an engine has handled it.
CREATE TABLE journey_feed (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    -- order | event | stage | segment_enter | segment_exit
    kind        TEXT    NOT NULL,
    -- order.created, the event's name, the new stage, the segment's name
    name        TEXT    NOT NULL,
    -- orders.id or events.id
    ref_id      INTEGER,
    -- when it happened (the order's or event's own time)
    time        INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER
);
CREATE INDEX journey_feed_customer ON journey_feed (customer_id);

-- When the send of a claimed message started (committed just before the SMTP transaction or
-- HTTP call). A message whose lease ran out in `sending` is in doubt only if its send had
-- started; one claimed in a batch but never started is simply claimable again. So a crash
-- leaves at most the sends in flight in doubt, not the whole claimed batch.
ALTER TABLE journey_messages ADD COLUMN started_at INTEGER;
