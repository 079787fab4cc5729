-- kanta store, SQLite schema 14 (see ../postgres/0014_dashboard.sql, which has the same tables,
-- columns and constraints): the dashboard's sessions, and the indexes its customer search uses.

-- A browser session, made by exchanging an API token at /login. Only the SHA-256 of the
-- session id is kept (as for tokens); it lives until `expires_at`, until logout deletes it, or
-- until its token is revoked (every lookup joins the unrevoked token, so revoking the token
-- ends its sessions at once). `csrf` is the token every form of the session carries.
CREATE TABLE web_sessions (
    hash       TEXT    PRIMARY KEY,
    token_id   INTEGER NOT NULL REFERENCES tokens (id),
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- The customer list searches email addresses and names by prefix, ignoring case (range scans
-- on the lower-cased text; ids by prefix use the unique index of `external_id`).
CREATE INDEX customers_email_lower ON customers (lower(email));
CREATE INDEX customers_name_lower ON customers (lower(name));

-- The overview counts the stage changes of the last week's runs.
CREATE INDEX stage_changes_run ON stage_changes (run_id);

-- A customer's page lists their segments and their entries and exits.
CREATE INDEX segment_members_customer ON segment_members (customer_id);
CREATE INDEX segment_transitions_customer ON segment_transitions (customer_id, id);
