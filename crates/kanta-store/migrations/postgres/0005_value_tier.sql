-- kanta store, PostgreSQL schema 5: value tiers (see ../sqlite/0005_value_tier.sql).
ALTER TABLE scores ADD COLUMN value_tier TEXT;
