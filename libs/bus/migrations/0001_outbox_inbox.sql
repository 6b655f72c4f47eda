-- The transactional outbox: events are written in the same transaction as the state change and
-- relayed to JetStream afterwards, so no event is lost (commit without publish) or phantom
-- (publish without commit).
CREATE TABLE outbox (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     UUID        NOT NULL UNIQUE,
    subject      TEXT        NOT NULL,
    -- Used to keep one aggregate's events on one consumer lane, in commit order.
    partition_key TEXT       NOT NULL,
    payload      TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;

-- The inbox: ids of events a consumer has processed, written in the same transaction as the
-- effect, so a redelivery (late ack, restart, broker dedupe gap) changes nothing.
CREATE TABLE inbox (
    consumer     TEXT        NOT NULL,
    event_id     UUID        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);
