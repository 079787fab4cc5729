-- kanta store, SQLite schema 15 (see ../postgres/0015_dashboard_counts.sql, which has the same
-- tables, columns and constraints): what the dashboard counts, kept countable at 10⁶ customers.

-- How many customers each scoring run moved from one stage to another, written with the run's
-- stage changes: the overview sums a week of these instead of grouping every change (the first
-- run alone changes every customer's stage).
CREATE TABLE stage_movements (
    run_id     INTEGER NOT NULL,
    from_stage TEXT,
    to_stage   TEXT    NOT NULL,
    customers  INTEGER NOT NULL
);
CREATE INDEX stage_movements_run ON stage_movements (run_id);
INSERT INTO stage_movements (run_id, from_stage, to_stage, customers)
SELECT run_id, from_stage, to_stage, COUNT(*) FROM stage_changes GROUP BY run_id, from_stage, to_stage;

-- A journey's runs by version, status and arm, and its active runs by step, read from indexes
-- alone (the journey pages and /v1/journeys/{name} count them on every view).
CREATE INDEX journey_runs_counts ON journey_runs (journey, version, status, arm);
CREATE INDEX journey_runs_active_step ON journey_runs (journey, version, step) WHERE status = 'active';
