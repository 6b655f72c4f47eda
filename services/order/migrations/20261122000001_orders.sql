-- Per-tenant settings, set by a tenant admin over gRPC.
CREATE TABLE settings (
    tenant_id              UUID PRIMARY KEY,
    -- Orders left in pending_payment this long are cancelled (payment_timeout); 0: off.
    payment_window_minutes BIGINT      NOT NULL DEFAULT 0 CHECK (payment_window_minutes >= 0),
    currency               CHAR(3),
    time_zone              TEXT        NOT NULL DEFAULT 'UTC',
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id                    UUID PRIMARY KEY,
    tenant_id             UUID        NOT NULL,
    -- ORD-000042: per tenant, increasing, never reused (gaps are fine).
    code                  TEXT        NOT NULL,
    status                TEXT        NOT NULL,
    payment_status        TEXT        NOT NULL,
    source                TEXT        NOT NULL CHECK (source IN ('draft', 'tiktok_shop')),
    source_id             TEXT        NOT NULL,
    reservation_reference TEXT        NOT NULL,
    currency              CHAR(3)     NOT NULL,
    subtotal_minor        BIGINT      NOT NULL,
    discount_minor        BIGINT      NOT NULL,
    tax_minor             BIGINT      NOT NULL,
    shipping_minor        BIGINT      NOT NULL,
    total_minor           BIGINT      NOT NULL,
    paid_minor            BIGINT      NOT NULL DEFAULT 0,
    refunded_minor        BIGINT      NOT NULL DEFAULT 0,
    customer              JSONB       NOT NULL DEFAULT '{}',
    shipping_address      JSONB,
    notes                 TEXT        NOT NULL DEFAULT '',
    tags                  TEXT[]      NOT NULL DEFAULT '{}',
    -- Why a person should look: unmapped_sku, stock_shortage.
    attention             TEXT[]      NOT NULL DEFAULT '{}',
    -- TikTok Shop's update_time of the last platform status applied (orders notifications).
    platform_update_time  BIGINT,
    -- Lowercased code, customer name and phone, for free-text search.
    search_text           TEXT        NOT NULL DEFAULT '',
    version               BIGINT      NOT NULL DEFAULT 1,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, source, source_id),
    UNIQUE (tenant_id, code)
);
CREATE INDEX orders_created ON orders (tenant_id, created_at DESC, id DESC);
CREATE INDEX orders_status_created ON orders (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX orders_payment_created ON orders (tenant_id, payment_status, created_at DESC, id DESC);
CREATE INDEX orders_source_created ON orders (tenant_id, source, created_at DESC, id DESC);
CREATE INDEX orders_total ON orders (tenant_id, total_minor DESC, id DESC);
CREATE INDEX orders_awaiting_payment ON orders (created_at) WHERE status = 'pending_payment';
CREATE INDEX orders_search ON orders USING gin (search_text public.gin_trgm_ops);

CREATE TABLE order_items (
    order_id         UUID   NOT NULL REFERENCES orders (id),
    position         INT    NOT NULL,
    sku              TEXT,
    name             TEXT   NOT NULL,
    unit_price_minor BIGINT NOT NULL,
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    line_total_minor BIGINT NOT NULL,
    PRIMARY KEY (order_id, position)
);

-- One row per transition: from, to, why, who (user and/or service), and from where.
CREATE TABLE status_history (
    id            BIGSERIAL PRIMARY KEY,
    order_id      UUID        NOT NULL REFERENCES orders (id),
    from_status   TEXT,
    to_status     TEXT        NOT NULL,
    reason        TEXT,
    actor_user    TEXT,
    actor_service TEXT,
    source        TEXT        NOT NULL CHECK (source IN ('user', 'system', 'tiktok_shop')),
    at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX status_history_order ON status_history (order_id, id);

-- One row per change of any kind (creation, status, payment, edit), with what changed.
CREATE TABLE audit_log (
    id            BIGSERIAL PRIMARY KEY,
    order_id      UUID        NOT NULL REFERENCES orders (id),
    action        TEXT        NOT NULL,
    changes       JSONB       NOT NULL DEFAULT '{}',
    actor_user    TEXT,
    actor_service TEXT,
    at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_order ON audit_log (order_id, id);

CREATE TABLE payments (
    id           BIGSERIAL PRIMARY KEY,
    order_id     UUID        NOT NULL REFERENCES orders (id),
    kind         TEXT        NOT NULL CHECK (kind IN ('payment', 'refund')),
    amount_minor BIGINT      NOT NULL CHECK (amount_minor > 0),
    method       TEXT        NOT NULL DEFAULT '',
    reference    TEXT        NOT NULL DEFAULT '',
    recorded_by  TEXT,
    at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payments_order ON payments (order_id, id);
