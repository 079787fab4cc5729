-- kanta store, SQLite schema 1. Times are microseconds since 1970-01-01 UTC; money is in
-- 1/10,000 currency units (kanta_core::Money); JSON is stored as text. The PostgreSQL schema
-- (../postgres/0001_init.sql) has the same tables, columns and constraints.

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    external_id TEXT    NOT NULL UNIQUE,
    email       TEXT,
    phone       TEXT,
    name        TEXT,
    timezone    TEXT,
    locale      TEXT,
    birthday    TEXT,
    attributes  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1,
    erased_at   INTEGER
);

CREATE TABLE consent (
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    channel     TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    source      TEXT,
    time        INTEGER NOT NULL,
    PRIMARY KEY (customer_id, channel, time, status)
);

CREATE TABLE orders (
    id          INTEGER PRIMARY KEY,
    external_id TEXT    NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    time        INTEGER NOT NULL,
    amount      INTEGER NOT NULL,
    currency    TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    lines_digest TEXT   NOT NULL,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX orders_customer ON orders (customer_id, time);

CREATE TABLE order_lines (
    order_id  INTEGER NOT NULL REFERENCES orders (id),
    line_no   INTEGER NOT NULL,
    product   TEXT    NOT NULL,
    category  TEXT,
    quantity  INTEGER NOT NULL,
    price     INTEGER NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    external_id TEXT    NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    name        TEXT    NOT NULL,
    time        INTEGER NOT NULL,
    properties  TEXT
);
CREATE INDEX events_customer ON events (customer_id, time);

CREATE TABLE feedback (
    id          INTEGER PRIMARY KEY,
    external_id TEXT    NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    time        INTEGER NOT NULL,
    nps         INTEGER,
    csat        INTEGER,
    text        TEXT,
    topics      TEXT,
    channel     TEXT,
    order_id    TEXT,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX feedback_customer ON feedback (customer_id, time);

CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY,
    hash       TEXT    NOT NULL UNIQUE,
    scope      TEXT    NOT NULL,
    name       TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE idempotency (
    token_id     INTEGER NOT NULL REFERENCES tokens (id),
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (token_id, key)
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    time        INTEGER NOT NULL,
    token_id    INTEGER,
    action      TEXT    NOT NULL,
    customer_id INTEGER,
    detail      TEXT
);
