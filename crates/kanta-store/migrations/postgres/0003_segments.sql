-- kanta store, PostgreSQL schema 3: saved segments (see ../sqlite/0003_segments.sql).

CREATE TABLE segments (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT   NOT NULL UNIQUE,
    expression   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    refreshed_at BIGINT NOT NULL,
    members      BIGINT NOT NULL
);

CREATE TABLE segment_members (
    segment_id  BIGINT NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    entered_at  BIGINT NOT NULL,
    PRIMARY KEY (segment_id, customer_id)
);

CREATE TABLE segment_transitions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    segment_id  BIGINT NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    customer_id BIGINT NOT NULL REFERENCES customers (id),
    kind        TEXT   NOT NULL,
    time        BIGINT NOT NULL
);
CREATE INDEX segment_transitions_segment ON segment_transitions (segment_id, id);
