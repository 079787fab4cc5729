-- kanta store, SQLite schema 2: the scoring job's output (see ../postgres/0002_scores.sql).
-- One row per scoring run with its fitted models; each scored customer's current scores;
-- and every change of a customer's lifecycle stage between runs.

CREATE TABLE score_runs (
    id            INTEGER PRIMARY KEY,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER NOT NULL,
    as_of         TEXT    NOT NULL,
    customers     INTEGER NOT NULL,
    orders        INTEGER NOT NULL,
    model         TEXT,
    stage_changes INTEGER NOT NULL,
    diagnostics   TEXT    NOT NULL
);

-- Scores are derived data, replaced as a whole by every run (the job writes only ids it read
-- from the orders): no foreign keys, whose checks cost a third of a run's write time.
CREATE TABLE scores (
    customer_id      INTEGER PRIMARY KEY,
    run_id           INTEGER NOT NULL,
    r                INTEGER NOT NULL,
    f                INTEGER NOT NULL,
    m                INTEGER NOT NULL,
    rfm_segment      TEXT    NOT NULL,
    stage            TEXT    NOT NULL,
    stage_since      INTEGER NOT NULL,
    p_alive          REAL,
    expected_30d     REAL,
    expected_90d     REAL,
    expected_365d    REAL,
    p_purchase_30d   REAL,
    expected_spend   REAL,
    clv_12m          REAL,
    next_purchase_at INTEGER
);

CREATE TABLE stage_changes (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL,
    run_id      INTEGER NOT NULL,
    time        INTEGER NOT NULL,
    from_stage  TEXT,
    to_stage    TEXT    NOT NULL
);
CREATE INDEX stage_changes_customer ON stage_changes (customer_id, id);
