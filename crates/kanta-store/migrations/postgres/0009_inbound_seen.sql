-- kanta store, PostgreSQL schema 9 (see ../sqlite/0009_inbound_seen.sql): the signatures of
-- accepted inbound webhook requests, kept until their timestamp leaves the tolerance window,
-- so a captured request cannot be replayed (inserted in the transaction that writes the
-- request's customers; expired rows are deleted by the next such write). `digest` is the hex
-- SHA-256 of the verified MAC, not the MAC itself.
CREATE TABLE inbound_seen (
    hook       TEXT    NOT NULL,
    digest     TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL,
    PRIMARY KEY (hook, digest)
);
CREATE INDEX inbound_seen_expires ON inbound_seen (expires_at);
