-- kanta store, PostgreSQL schema 7: the status of a scoring run (see ../sqlite/0007_run_status.sql).
ALTER TABLE score_runs ADD COLUMN status TEXT NOT NULL DEFAULT 'completed';
