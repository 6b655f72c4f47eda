-- Per-tenant settings, set by a tenant admin over gRPC.
CREATE TABLE settings (
    tenant_id                   UUID PRIMARY KEY,
    default_low_stock_threshold BIGINT      NOT NULL DEFAULT 0 CHECK (default_low_stock_threshold >= 0),
    currency                    CHAR(3),
    updated_at                  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Bumped on every catalog change; the search cache and the draft service's snapshot key on it.
CREATE TABLE catalog_versions (
    tenant_id UUID PRIMARY KEY,
    version   BIGINT NOT NULL
);

-- The only source of product names and prices.
CREATE TABLE catalog_items (
    tenant_id   UUID        NOT NULL,
    sku         TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    attributes  JSONB       NOT NULL DEFAULT '{}',
    price_minor BIGINT      NOT NULL CHECK (price_minor >= 0),
    currency    CHAR(3)     NOT NULL,
    active      BOOLEAN     NOT NULL DEFAULT true,
    retailer_id TEXT,
    product_id  TEXT,
    version     BIGINT      NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sku)
);
CREATE UNIQUE INDEX catalog_items_retailer ON catalog_items (tenant_id, retailer_id) WHERE retailer_id IS NOT NULL;

-- Stock per SKU and location. The CHECKs make an oversell impossible even for a buggy caller.
CREATE TABLE stock_levels (
    tenant_id           UUID        NOT NULL,
    sku                 TEXT        NOT NULL,
    location            TEXT        NOT NULL DEFAULT 'default',
    on_hand             BIGINT      NOT NULL DEFAULT 0 CHECK (on_hand >= 0),
    reserved            BIGINT      NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    -- NULL: the tenant's default threshold applies.
    low_stock_threshold BIGINT CHECK (low_stock_threshold >= 0),
    low_stock_alerted   BOOLEAN     NOT NULL DEFAULT false,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sku, location),
    CHECK (reserved <= on_hand),
    FOREIGN KEY (tenant_id, sku) REFERENCES catalog_items (tenant_id, sku)
);

-- Append-only: every change to on_hand or reserved, with why. Replaying it gives the levels.
CREATE TABLE stock_ledger (
    id             BIGSERIAL PRIMARY KEY,
    tenant_id      UUID        NOT NULL,
    sku            TEXT        NOT NULL,
    location       TEXT        NOT NULL,
    on_hand_delta  BIGINT      NOT NULL,
    reserved_delta BIGINT      NOT NULL,
    reason         TEXT        NOT NULL,
    reference      TEXT,
    note           TEXT,
    actor          TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stock_ledger_sku ON stock_ledger (tenant_id, sku, location, id);

-- Makes a retried AdjustStock apply once.
CREATE TABLE stock_adjustments (
    tenant_id       UUID   NOT NULL,
    idempotency_key TEXT   NOT NULL,
    ledger_id       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, idempotency_key)
);

CREATE TABLE reservations (
    tenant_id  UUID        NOT NULL,
    reference  TEXT        NOT NULL,
    status     TEXT        NOT NULL CHECK (status IN ('held', 'released', 'committed', 'restocked')),
    reason     TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, reference)
);

CREATE TABLE reservation_items (
    tenant_id UUID   NOT NULL,
    reference TEXT   NOT NULL,
    sku       TEXT   NOT NULL,
    location  TEXT   NOT NULL,
    quantity  BIGINT NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (tenant_id, reference, sku, location),
    FOREIGN KEY (tenant_id, reference) REFERENCES reservations (tenant_id, reference)
);
