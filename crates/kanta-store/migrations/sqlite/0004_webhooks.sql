-- kanta store, SQLite schema 4: outbound webhooks (see ../postgres/0004_webhooks.sql).

-- Webhook dispatchers read segment transitions after a cursor, so their ids must never be
-- reused. A plain INTEGER PRIMARY KEY reuses the largest id after the rows holding it are
-- deleted (deleting a segment deletes its transitions); AUTOINCREMENT never does.
CREATE TABLE segment_transitions_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    segment_id  INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    kind        TEXT    NOT NULL,
    time        INTEGER NOT NULL
);
INSERT INTO segment_transitions_new (id, segment_id, customer_id, kind, time)
    SELECT id, segment_id, customer_id, kind, time FROM segment_transitions;
DROP TABLE segment_transitions;
ALTER TABLE segment_transitions_new RENAME TO segment_transitions;
CREATE INDEX segment_transitions_segment ON segment_transitions (segment_id, id);

-- One row per configured endpoint (by name) once the dispatcher has seen it: how far it has
-- read the two event logs, and its health.
CREATE TABLE webhook_endpoints (
    name              TEXT    PRIMARY KEY,
    url               TEXT    NOT NULL,
    stage_cursor      INTEGER NOT NULL,
    transition_cursor INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    failures          INTEGER NOT NULL DEFAULT 0,
    retry_at          INTEGER,
    paused_at         INTEGER,
    paused_reason     TEXT
);

-- The outbox and delivery log: one row per event per endpoint, its exact body (the signed
-- bytes, identical on every retry), and the outcome of the latest attempt.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint        TEXT    NOT NULL REFERENCES webhook_endpoints (name) ON DELETE CASCADE,
    customer_id     INTEGER NOT NULL,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_attempt_at INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    INTEGER,
    UNIQUE (endpoint, event_id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint, state, id);
-- Erasure finds a customer's deliveries (their bodies name the customer) by this.
CREATE INDEX webhook_deliveries_customer ON webhook_deliveries (customer_id);
