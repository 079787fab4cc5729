-- kanta store, PostgreSQL schema 2: the scoring job's output (see ../sqlite/0002_scores.sql).

CREATE TABLE score_runs (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT NOT NULL,
    as_of         TEXT   NOT NULL,
    customers     BIGINT NOT NULL,
    orders        BIGINT NOT NULL,
    model         TEXT,
    stage_changes BIGINT NOT NULL,
    diagnostics   JSONB  NOT NULL
);

-- Scores are derived data, replaced as a whole by every run (the job writes only ids it read
-- from the orders): no foreign keys, whose checks cost a third of a run's write time.
CREATE TABLE scores (
    customer_id      BIGINT PRIMARY KEY,
    run_id           BIGINT NOT NULL,
    r                BIGINT NOT NULL,
    f                BIGINT NOT NULL,
    m                BIGINT NOT NULL,
    rfm_segment      TEXT    NOT NULL,
    stage            TEXT    NOT NULL,
    stage_since      BIGINT NOT NULL,
    p_alive          DOUBLE PRECISION,
    expected_30d     DOUBLE PRECISION,
    expected_90d     DOUBLE PRECISION,
    expected_365d    DOUBLE PRECISION,
    p_purchase_30d   DOUBLE PRECISION,
    expected_spend   DOUBLE PRECISION,
    clv_12m          DOUBLE PRECISION,
    next_purchase_at BIGINT
);

CREATE TABLE stage_changes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    run_id      BIGINT NOT NULL,
    time        BIGINT NOT NULL,
    from_stage  TEXT,
    to_stage    TEXT   NOT NULL
);
CREATE INDEX stage_changes_customer ON stage_changes (customer_id, id);
