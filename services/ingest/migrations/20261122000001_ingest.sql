-- The channel registry: which tenant owns a WhatsApp number, an Instagram account or a TikTok
-- shop. One external id belongs to exactly one tenant.
CREATE TABLE channels (
    id                     UUID PRIMARY KEY,
    tenant_id              UUID        NOT NULL,
    platform               TEXT        NOT NULL CHECK (platform IN ('whatsapp', 'instagram', 'tiktok_shop')),
    external_id            TEXT        NOT NULL,
    display_name           TEXT        NOT NULL DEFAULT '',
    enabled                BOOLEAN     NOT NULL DEFAULT true,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    disabled_at            TIMESTAMPTZ,
    -- Platform credentials, sealed with ORDERFLOW_CREDENTIALS_KEY (nonce || ciphertext).
    credentials            BYTEA,
    credentials_updated_at TIMESTAMPTZ,
    UNIQUE (platform, external_id)
);
CREATE INDEX channels_tenant ON channels (tenant_id);

-- One row per platform message/status/notification ever accepted: a redelivery days later finds
-- its key here and produces nothing. Kept at least 8 days (platforms retry for up to 7).
CREATE TABLE webhook_dedupe (
    key           TEXT PRIMARY KEY,
    event_id      UUID        NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX webhook_dedupe_first_seen ON webhook_dedupe (first_seen_at);

-- Every accepted POST exactly as received, for replay and audits. It holds phone numbers and
-- message text, so it is pruned after its retention (30 days by default).
CREATE TABLE raw_payloads (
    id          UUID PRIMARY KEY,
    platform    TEXT        NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    body        BYTEA       NOT NULL,
    events      INT         NOT NULL,
    duplicates  INT         NOT NULL,
    parked      INT         NOT NULL
);
CREATE INDEX raw_payloads_received_at ON raw_payloads (received_at);
