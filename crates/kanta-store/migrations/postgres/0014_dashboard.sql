-- kanta store, PostgreSQL schema 14 (see ../sqlite/0014_dashboard.sql, which has the same
-- tables, columns and constraints): the dashboard's sessions, and the indexes its customer
-- search uses.

-- A browser session, made by exchanging an API token at /login. Only the SHA-256 of the
-- session id is kept; revoking the token ends its sessions (lookups join the unrevoked token).
CREATE TABLE web_sessions (
    hash       TEXT   PRIMARY KEY,
    token_id   BIGINT NOT NULL REFERENCES tokens (id),
    csrf       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- The customer list searches ids, and email addresses and names ignoring case, by prefix:
-- range scans in the C collation's byte order, which the range bounds assume (the database's
-- own collation may order `a-b` and `ab` differently).
CREATE INDEX customers_external_id_c ON customers (external_id COLLATE "C");
CREATE INDEX customers_email_lower ON customers ((lower(email) COLLATE "C"));
CREATE INDEX customers_name_lower ON customers ((lower(name) COLLATE "C"));

-- The overview counts the stage changes of the last week's runs.
CREATE INDEX stage_changes_run ON stage_changes (run_id);

-- A customer's page lists their segments and their entries and exits.
CREATE INDEX segment_members_customer ON segment_members (customer_id);
CREATE INDEX segment_transitions_customer ON segment_transitions (customer_id, id);
