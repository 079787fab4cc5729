-- kanta store, SQLite schema 5: each scored customer's value tier (top, high, mid, low; see
-- kanta_core::tier). Rows of earlier runs have none until the next run.
ALTER TABLE scores ADD COLUMN value_tier TEXT;
