-- kanta store, PostgreSQL schema 13 (see ../sqlite/0013_journey_goals.sql, which has the same
-- tables, columns and constraints): holdout arms and goal conversions, what the uplift report
-- compares.

-- The arm a run's customer was put in when they became eligible: `treatment` (gets the steps),
-- `control` (the journey's holdout) or `global_control` (the settings' global holdout). A run
-- in a control arm is recorded with status `held_out`, already ended: it counts for re-entry
-- like any run and is followed for the goal, but is never due and sends nothing.
ALTER TABLE journey_runs ADD COLUMN arm TEXT NOT NULL DEFAULT 'treatment';

-- The first time a run's customer reached the journey's goal within its window after entering
-- (treatment and control alike): at most one per run. `source` says what reached it (`order`,
-- `event`, `segment`), `ref_id` which order or event; `revenue` is an order's signed amount
-- (Money units, net: a refund counts negative) when the goal is an order.
CREATE TABLE journey_conversions (
    run_id      BIGINT PRIMARY KEY REFERENCES journey_runs (id),
    journey     TEXT    NOT NULL,
    customer_id BIGINT  NOT NULL REFERENCES customers (id),
    time        BIGINT  NOT NULL,
    source      TEXT    NOT NULL,
    ref_id      BIGINT,
    revenue     BIGINT,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX journey_conversions_journey ON journey_conversions (journey, run_id);
-- A customer's conversions: an arrival credited twice is found by (customer, journey, time).
CREATE INDEX journey_conversions_customer ON journey_conversions (customer_id, journey, time);
