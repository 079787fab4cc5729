-- kanta store, PostgreSQL schema 4: outbound webhooks (see ../sqlite/0004_webhooks.sql; identity
-- columns never reuse ids, so segment_transitions needs no rebuild here).

CREATE TABLE webhook_endpoints (
    name              TEXT   PRIMARY KEY,
    url               TEXT   NOT NULL,
    stage_cursor      BIGINT NOT NULL,
    transition_cursor BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    failures          BIGINT NOT NULL DEFAULT 0,
    retry_at          BIGINT,
    paused_at         BIGINT,
    paused_reason     TEXT
);

CREATE TABLE webhook_deliveries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint        TEXT   NOT NULL REFERENCES webhook_endpoints (name) ON DELETE CASCADE,
    customer_id     BIGINT  NOT NULL,
    event_id        TEXT   NOT NULL,
    event_type      TEXT   NOT NULL,
    payload         TEXT   NOT NULL,
    state           TEXT   NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    last_attempt_at BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    delivered_at    BIGINT,
    UNIQUE (endpoint, event_id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint, state, id);
-- Erasure finds a customer's deliveries (their bodies name the customer) by this.
CREATE INDEX webhook_deliveries_customer ON webhook_deliveries (customer_id);
