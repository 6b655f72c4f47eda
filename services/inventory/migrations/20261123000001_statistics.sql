-- Autoanalyze's cost is its sample (300 rows per point of the largest statistics target on the
-- table) and sorting each column's sample. The ledger and the reservations' items are append-only
-- and read by their key (a SKU's history, a reservation's lines), so a small sample does.
ALTER TABLE stock_ledger
    ALTER COLUMN id SET STATISTICS 10,
    ALTER COLUMN tenant_id SET STATISTICS 10,
    ALTER COLUMN sku SET STATISTICS 10,
    ALTER COLUMN location SET STATISTICS 10,
    ALTER COLUMN on_hand_delta SET STATISTICS 10,
    ALTER COLUMN reserved_delta SET STATISTICS 10,
    ALTER COLUMN reason SET STATISTICS 10,
    ALTER COLUMN reference SET STATISTICS 10,
    ALTER COLUMN note SET STATISTICS 10,
    ALTER COLUMN actor SET STATISTICS 10,
    ALTER COLUMN created_at SET STATISTICS 10;
ALTER TABLE reservation_items
    ALTER COLUMN tenant_id SET STATISTICS 10,
    ALTER COLUMN reference SET STATISTICS 10,
    ALTER COLUMN sku SET STATISTICS 10,
    ALTER COLUMN location SET STATISTICS 10,
    ALTER COLUMN quantity SET STATISTICS 10;
