-- kanta store, SQLite schema 6: product groups per scored customer: the category bought most and
-- the cross-sell hint (see kanta_core::crosssell). Rows of earlier runs have none until the next run.
ALTER TABLE scores ADD COLUMN main_category TEXT;
ALTER TABLE scores ADD COLUMN next_category TEXT;
