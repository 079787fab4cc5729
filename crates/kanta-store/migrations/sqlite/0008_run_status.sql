-- A scoring run that stopped before writing (the server shut down, or the run exceeded its time
-- budget) is recorded too, so an operator sees it; its scores were never written and the
-- previous run's stay. Completed runs keep the default.
ALTER TABLE score_runs ADD COLUMN status TEXT NOT NULL DEFAULT 'completed';
