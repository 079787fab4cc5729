-- kanta store, SQLite schema 3: saved segments, their members as of the last refresh, and every
-- enter / exit (see ../postgres/0003_segments.sql).

CREATE TABLE segments (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    expression   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    refreshed_at INTEGER NOT NULL,
    members      INTEGER NOT NULL
);

CREATE TABLE segment_members (
    segment_id  INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    entered_at  INTEGER NOT NULL,
    PRIMARY KEY (segment_id, customer_id)
);

CREATE TABLE segment_transitions (
    id          INTEGER PRIMARY KEY,
    segment_id  INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    kind        TEXT    NOT NULL,
    time        INTEGER NOT NULL
);
CREATE INDEX segment_transitions_segment ON segment_transitions (segment_id, id);
