-- kanta store, PostgreSQL schema 8: the status of a scoring run (see ../sqlite/0008_run_status.sql).
ALTER TABLE score_runs ADD COLUMN status TEXT NOT NULL DEFAULT 'completed';
