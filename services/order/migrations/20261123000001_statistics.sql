-- Autoanalyze's cost is its sample (300 rows per point of the largest statistics target on the
-- table) and sorting each column's sample. Lines, history and audit rows are append-only and only
-- ever read by their order, so a small sample does; the customer and address snapshots (JSON) are
-- never filtered or sorted on (searches use `search_text`), so they get no statistics.
ALTER TABLE orders
    ALTER COLUMN customer SET STATISTICS 0,
    ALTER COLUMN shipping_address SET STATISTICS 0;
ALTER TABLE order_items
    ALTER COLUMN order_id SET STATISTICS 10,
    ALTER COLUMN position SET STATISTICS 10,
    ALTER COLUMN sku SET STATISTICS 10,
    ALTER COLUMN name SET STATISTICS 10,
    ALTER COLUMN unit_price_minor SET STATISTICS 10,
    ALTER COLUMN quantity SET STATISTICS 10,
    ALTER COLUMN line_total_minor SET STATISTICS 10;
ALTER TABLE status_history
    ALTER COLUMN id SET STATISTICS 10,
    ALTER COLUMN order_id SET STATISTICS 10,
    ALTER COLUMN from_status SET STATISTICS 10,
    ALTER COLUMN to_status SET STATISTICS 10,
    ALTER COLUMN reason SET STATISTICS 10,
    ALTER COLUMN actor_user SET STATISTICS 10,
    ALTER COLUMN actor_service SET STATISTICS 10,
    ALTER COLUMN source SET STATISTICS 10,
    ALTER COLUMN at SET STATISTICS 10;
ALTER TABLE audit_log
    ALTER COLUMN id SET STATISTICS 10,
    ALTER COLUMN order_id SET STATISTICS 10,
    ALTER COLUMN action SET STATISTICS 10,
    ALTER COLUMN changes SET STATISTICS 0,
    ALTER COLUMN actor_user SET STATISTICS 10,
    ALTER COLUMN actor_service SET STATISTICS 10,
    ALTER COLUMN at SET STATISTICS 10;
