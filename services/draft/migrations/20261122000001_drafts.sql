-- Per-tenant settings, set by a tenant admin over gRPC.
CREATE TABLE settings (
    tenant_id         UUID PRIMARY KEY,
    ttl_minutes       BIGINT      NOT NULL DEFAULT 1440 CHECK (ttl_minutes > 0),
    auto_approve      BOOLEAN     NOT NULL DEFAULT false,
    trusted_customers TEXT[]      NOT NULL DEFAULT '{}',
    currency          CHAR(3),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Architecture invariant: only this service writes drafts.
CREATE TABLE drafts (
    id                    UUID PRIMARY KEY,
    tenant_id             UUID        NOT NULL,
    status                TEXT        NOT NULL
        CHECK (status IN ('pending_review', 'approving', 'approved', 'rejected', 'expired')),
    source                TEXT        NOT NULL,
    customer              JSONB       NOT NULL DEFAULT '{}',
    -- platform:channel:customer, or manual:<draft id>: follow-ups merge into the open draft.
    customer_key          TEXT        NOT NULL,
    customer_search       TEXT        NOT NULL DEFAULT '',
    shipping_address      JSONB,
    currency              CHAR(3)     NOT NULL,
    subtotal_minor        BIGINT      NOT NULL,
    discount_minor        BIGINT      NOT NULL DEFAULT 0,
    tax_minor             BIGINT      NOT NULL DEFAULT 0,
    shipping_minor        BIGINT      NOT NULL DEFAULT 0,
    total_minor           BIGINT      NOT NULL,
    notes                 TEXT        NOT NULL DEFAULT '',
    version               BIGINT      NOT NULL DEFAULT 1,
    expires_at            TIMESTAMPTZ NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Approval: the lease keeps one approver (or the sweeper) working a draft at a time.
    lease_owner           TEXT,
    lease_until           TIMESTAMPTZ,
    approval_attempts     INT         NOT NULL DEFAULT 0,
    approved_by           TEXT,
    reservation_reference TEXT,
    order_id              UUID,
    order_code            TEXT,
    rejected_reason       TEXT,
    last_error            TEXT
);
CREATE INDEX drafts_created ON drafts (tenant_id, created_at DESC, id DESC);
CREATE INDEX drafts_status_created ON drafts (tenant_id, status, created_at DESC, id DESC);
CREATE UNIQUE INDEX drafts_one_open_per_customer ON drafts (tenant_id, customer_key) WHERE status = 'pending_review';
CREATE INDEX drafts_expiring ON drafts (expires_at) WHERE status = 'pending_review';
CREATE INDEX drafts_approving ON drafts (lease_until) WHERE status = 'approving';

CREATE TABLE draft_items (
    draft_id            UUID   NOT NULL REFERENCES drafts (id),
    position            INT    NOT NULL,
    original_text       TEXT   NOT NULL DEFAULT '',
    sku                 TEXT,
    name                TEXT   NOT NULL,
    quantity            BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_minor    BIGINT,
    message_price_minor BIGINT,
    confidence          REAL   NOT NULL DEFAULT 0,
    PRIMARY KEY (draft_id, position)
);

-- Messages already turned into (or merged into) drafts: a redelivery, or the same text re-sent
-- within minutes, changes nothing.
CREATE TABLE draft_messages (
    tenant_id    UUID        NOT NULL,
    message_key  TEXT        NOT NULL,
    customer_key TEXT        NOT NULL,
    text_hash    TEXT        NOT NULL,
    draft_id     UUID,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, message_key)
);
CREATE INDEX draft_messages_recent ON draft_messages (tenant_id, customer_key, text_hash, received_at);
