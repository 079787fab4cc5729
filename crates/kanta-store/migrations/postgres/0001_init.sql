-- kanta store, PostgreSQL schema 1. Times are microseconds since 1970-01-01 UTC; money is in
-- 1/10,000 currency units (kanta_core::Money); JSON is JSONB. The SQLite schema
-- (../sqlite/0001_init.sql) has the same tables, columns and constraints.

CREATE TABLE customers (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id TEXT    NOT NULL UNIQUE,
    email       TEXT,
    phone       TEXT,
    name        TEXT,
    timezone    TEXT,
    locale      TEXT,
    birthday    TEXT,
    attributes  JSONB,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1,
    erased_at   BIGINT
);

CREATE TABLE consent (
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    channel     TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    source      TEXT,
    time        BIGINT NOT NULL,
    PRIMARY KEY (customer_id, channel, time, status)
);

CREATE TABLE orders (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id TEXT    NOT NULL UNIQUE,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    time        BIGINT NOT NULL,
    amount      BIGINT NOT NULL,
    currency    TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    lines_digest TEXT   NOT NULL,
    version     BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX orders_customer ON orders (customer_id, time);

CREATE TABLE order_lines (
    order_id  BIGINT NOT NULL REFERENCES orders (id),
    line_no   BIGINT NOT NULL,
    product   TEXT    NOT NULL,
    category  TEXT,
    quantity  BIGINT NOT NULL,
    price     BIGINT NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id TEXT    NOT NULL UNIQUE,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    name        TEXT    NOT NULL,
    time        BIGINT NOT NULL,
    properties  JSONB
);
CREATE INDEX events_customer ON events (customer_id, time);

CREATE TABLE feedback (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id TEXT    NOT NULL UNIQUE,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    time        BIGINT NOT NULL,
    nps         BIGINT,
    csat        BIGINT,
    text        TEXT,
    topics      JSONB,
    channel     TEXT,
    order_id    TEXT,
    version     BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX feedback_customer ON feedback (customer_id, time);

CREATE TABLE tokens (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hash       TEXT    NOT NULL UNIQUE,
    scope      TEXT    NOT NULL,
    name       TEXT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE idempotency (
    token_id     BIGINT NOT NULL REFERENCES tokens (id),
    key          TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    status       BIGINT NOT NULL,
    body         TEXT    NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (token_id, key)
);

CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time        BIGINT NOT NULL,
    token_id    BIGINT,
    action      TEXT    NOT NULL,
    customer_id BIGINT,
    detail      TEXT
);

-- RFC 7396 JSON merge patch, the semantics of SQLite's json_patch(): customer attributes posted
-- later are merged key by key into the stored ones, and a key set to null is removed.
CREATE FUNCTION kanta_merge_patch(target JSONB, patch JSONB) RETURNS JSONB
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k TEXT;
    v JSONB;
    result JSONB;
BEGIN
    IF patch IS NULL THEN
        RETURN target;
    END IF;
    IF jsonb_typeof(patch) <> 'object' THEN
        RETURN patch;
    END IF;
    IF target IS NULL OR jsonb_typeof(target) <> 'object' THEN
        result := '{}'::JSONB;
    ELSE
        result := target;
    END IF;
    FOR k, v IN SELECT * FROM jsonb_each(patch) LOOP
        IF jsonb_typeof(v) = 'null' THEN
            result := result - k;
        ELSE
            result := jsonb_set(result, ARRAY[k], kanta_merge_patch(result -> k, v));
        END IF;
    END LOOP;
    RETURN result;
END
$$;
