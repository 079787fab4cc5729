-- kanta store, SQLite schema 10 (see ../postgres/0010_journeys.sql, which has the same tables,
-- columns and constraints): lifecycle journeys. Documents are kept as the opaque JSON text the
-- caller hands in (the canonical form its digest covers); so are message payloads, which are
-- sent as stored. Status values in the partial indexes' predicates are the ones the queries
-- name literally, so the planners can use them.

-- Every version of every journey document, never changed once written: a run keeps the
-- version it started on.
CREATE TABLE journeys (
    name       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    definition TEXT    NOT NULL,
    digest     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (name, version)
);

-- The version new runs start on, and whether the journey is paused. `generation` counts the
-- changes of the row; their sum over the table tells a polling server that something changed.
CREATE TABLE journey_heads (
    name       TEXT    PRIMARY KEY,
    version    INTEGER NOT NULL,
    paused     BOOLEAN NOT NULL DEFAULT FALSE,
    generation INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);

-- One customer's way through one journey version. `due_at` is when the engine looks at it next
-- (NULL: only an awaited event or segment entry moves it); `wait_*` what it waits for;
-- `woken_at` when that arrived. The lease (`lease_owner`, `lease_until`, `lease_seq`, a fencing
-- counter bumped by every claim) says which worker may move it.
CREATE TABLE journey_runs (
    id           INTEGER PRIMARY KEY,
    journey      TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    customer_id  INTEGER NOT NULL REFERENCES customers (id),
    run_key      TEXT    NOT NULL DEFAULT '',
    status       TEXT    NOT NULL,
    step         TEXT    NOT NULL,
    due_at       INTEGER,
    wait_event   TEXT,
    wait_segment TEXT,
    wait_keyed   BOOLEAN NOT NULL DEFAULT FALSE,
    woken_at     INTEGER,
    context      TEXT    NOT NULL,
    entered_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    ended_at     INTEGER,
    exit_reason  TEXT,
    lease_owner  TEXT,
    lease_until  INTEGER,
    lease_seq    INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (journey, version) REFERENCES journeys (name, version)
);
-- Never two active runs of one journey for one customer and key.
CREATE UNIQUE INDEX journey_runs_one_active ON journey_runs (journey, customer_id, run_key) WHERE status = 'active';
CREATE INDEX journey_runs_due ON journey_runs (due_at, id) WHERE status = 'active';
-- A customer's runs: waiting runs to wake, runs to exit, re-entry, the concurrency limit, the 360.
CREATE INDEX journey_runs_customer ON journey_runs (customer_id, journey, run_key, entered_at);
CREATE INDEX journey_runs_journey ON journey_runs (journey, id);

-- A run's history: every step it passed, with what happened there.
CREATE TABLE journey_steps (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES journey_runs (id),
    step       TEXT    NOT NULL,
    occurrence INTEGER NOT NULL,
    time       INTEGER NOT NULL,
    outcome    TEXT    NOT NULL,
    detail     TEXT
);
CREATE INDEX journey_steps_run ON journey_steps (run_id, id);

-- The outbox: one row per message a run decided to send, keyed by its idempotency key (which
-- also forms its Message-ID), moving pending -> sending -> sent | failed | retry, and to
-- in_doubt when found in sending after its lease ran out (never resent automatically).
CREATE TABLE journey_messages (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT    NOT NULL UNIQUE,
    message_id      TEXT    NOT NULL UNIQUE,
    run_id          INTEGER NOT NULL REFERENCES journey_runs (id),
    journey         TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    step            TEXT    NOT NULL,
    occurrence      INTEGER NOT NULL,
    customer_id     INTEGER NOT NULL REFERENCES customers (id),
    channel         TEXT    NOT NULL,
    transactional   BOOLEAN NOT NULL,
    recipient       TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    not_before      INTEGER NOT NULL,
    lease_owner     TEXT,
    lease_until     INTEGER,
    lease_seq       INTEGER NOT NULL DEFAULT 0,
    claimed_at      INTEGER,
    last_response   TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX journey_messages_due ON journey_messages (not_before, id) WHERE status IN ('pending', 'retry');
CREATE INDEX journey_messages_sending ON journey_messages (lease_until) WHERE status = 'sending';
CREATE INDEX journey_messages_in_doubt ON journey_messages (id) WHERE status = 'in_doubt';
CREATE INDEX journey_messages_customer ON journey_messages (customer_id, id);
CREATE INDEX journey_messages_run ON journey_messages (run_id, id);
CREATE INDEX journey_messages_step ON journey_messages (journey, version, step, status);

-- Addresses not to mail (lowercased): at once after a hard bounce or a complaint, after a
-- configured number of soft bounces, or by hand. A row with `suppressed` false only counts
-- soft bounces so far.
CREATE TABLE suppressions (
    address       TEXT    PRIMARY KEY,
    reason        TEXT    NOT NULL,
    soft_bounces  INTEGER NOT NULL DEFAULT 0,
    suppressed    BOOLEAN NOT NULL,
    suppressed_at INTEGER,
    updated_at    INTEGER NOT NULL
);
