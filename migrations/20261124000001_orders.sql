-- Orders, each an immutable JSON document keyed by its order_uid.
CREATE TABLE orders (
    order_uid  text        PRIMARY KEY,
    doc        jsonb       NOT NULL,
    -- Arrival order: the cache is warmed with the highest values first.
    seq        bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    stored_at  timestamptz NOT NULL DEFAULT now()
);

-- Every message that did not become an order (duplicates aside), kept for an operator to
-- inspect and replay. One row per topic/partition/offset, so a redelivery records it once.
CREATE TABLE rejected (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic        text        NOT NULL,
    "partition"  integer     NOT NULL,
    "offset"     bigint      NOT NULL,
    key          bytea,
    payload      bytea,
    reason_code  text        NOT NULL,
    reason       text        NOT NULL,
    seen_at      timestamptz NOT NULL DEFAULT now(),
    replayed_at  timestamptz,
    UNIQUE (topic, "partition", "offset")
);

CREATE INDEX rejected_seen_at ON rejected (seen_at DESC);
