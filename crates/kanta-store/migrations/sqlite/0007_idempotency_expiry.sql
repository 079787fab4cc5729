-- kanta store, SQLite schema 7 (see ../postgres/0007_idempotency_expiry.sql): stored idempotent
-- responses expire (the purge finds old ones by time), and each is tied to the customers its
-- request named (external ids, as written in the request), so erasing a customer deletes every
-- stored response that may quote them. The ties go with their response.
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE idempotency_customers (
    token_id INTEGER NOT NULL,
    key      TEXT    NOT NULL,
    customer TEXT    NOT NULL,
    PRIMARY KEY (token_id, key, customer),
    FOREIGN KEY (token_id, key) REFERENCES idempotency (token_id, key) ON DELETE CASCADE
);
CREATE INDEX idempotency_customers_customer ON idempotency_customers (customer);
