-- kanta store, PostgreSQL schema 12 (see ../sqlite/0012_journey_triggers.sql, which has the same
-- tables, columns and constraints): the cursors of the calendar triggers (dates, predicted
-- purchases, cron schedules).

-- Per journey, the instant its calendar trigger was evaluated through: every local midnight
-- (or cron occurrence) up to `evaluated_to` has been handled, nothing after it. For a cron
-- schedule, `last_occurrence` is the last occurrence that entered a segment's members. A worker
-- evaluating the window after `evaluated_to` holds the row's lease (`lease_owner`,
-- `lease_until`), so two servers on one database do not both scan it; the cursor moves only
-- when the window is fully processed.
CREATE TABLE journey_trigger_cursors (
    journey         TEXT    PRIMARY KEY,
    evaluated_to    BIGINT  NOT NULL,
    last_occurrence BIGINT,
    lease_owner     TEXT,
    lease_until     BIGINT,
    updated_at      BIGINT  NOT NULL
);

-- The distinct zones of the customers, read before every evaluation: from the index, not the
-- table.
CREATE INDEX customers_timezone ON customers (timezone);
