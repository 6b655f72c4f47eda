-- Autoanalyze's cost is its sample (300 rows per point of the largest statistics target on the
-- table) and sorting each column's sample. Items are only ever read by their draft, so a small
-- sample does; the customer and address snapshots (JSON) are never filtered or sorted on
-- (searches use `customer_search`), so they get no statistics. Measured under the approval
-- benchmark: analyzing `drafts` cost about 0.13 s of CPU per autovacuum round, mostly the JSON.
ALTER TABLE drafts
    ALTER COLUMN customer SET STATISTICS 0,
    ALTER COLUMN shipping_address SET STATISTICS 0;
ALTER TABLE draft_items
    ALTER COLUMN draft_id SET STATISTICS 10,
    ALTER COLUMN position SET STATISTICS 10,
    ALTER COLUMN original_text SET STATISTICS 10,
    ALTER COLUMN sku SET STATISTICS 10,
    ALTER COLUMN name SET STATISTICS 10,
    ALTER COLUMN quantity SET STATISTICS 10,
    ALTER COLUMN unit_price_minor SET STATISTICS 10,
    ALTER COLUMN message_price_minor SET STATISTICS 10,
    ALTER COLUMN confidence SET STATISTICS 10;
