-- Changes made here that TikTok Shop must know (cancelled; shipped with tracking), pushed by a
-- background worker through the shared retry and circuit breaker. Written in the same
-- transaction as the status change; never for changes that came from TikTok.
CREATE TABLE tiktok_sync (
    id              BIGSERIAL PRIMARY KEY,
    order_id        UUID        NOT NULL REFERENCES orders (id),
    tenant_id       UUID        NOT NULL,
    action          TEXT        NOT NULL CHECK (action IN ('cancel', 'ship')),
    payload         JSONB       NOT NULL DEFAULT '{}',
    status          TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'synced', 'failed')),
    attempts        INT         NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tiktok_sync_due ON tiktok_sync (next_attempt_at) WHERE status <> 'synced';
CREATE INDEX tiktok_sync_order ON tiktok_sync (order_id, id);

-- The TikTok shop an order belongs to, and its packages (to ship them).
ALTER TABLE orders ADD COLUMN platform_shop_id TEXT, ADD COLUMN platform_packages TEXT[] NOT NULL DEFAULT '{}';
