-- kanta store, PostgreSQL schema 6: product groups (see ../sqlite/0006_product_groups.sql).
ALTER TABLE scores ADD COLUMN main_category TEXT;
ALTER TABLE scores ADD COLUMN next_category TEXT;
