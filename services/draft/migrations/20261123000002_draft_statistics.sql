-- `drafts` was still analyzed from 30,000-row samples of every column: under the approval
-- benchmark, 0.13 s of CPU in each autovacuum round (every 10 s while the table grows), the largest
-- share of the round, and the open loop's slowest half second. Every query on drafts starts from an
-- index on `tenant_id` (or a partial index on the status it wants), so the plans do not hang on
-- fine histograms: the columns that queries filter or sort on keep a small sample (target 10, 3,000
-- rows), the rest (amounts, lease bookkeeping, the order it became, reasons) none. ANALYZE of 31,000
-- drafts: 110 ms before, 6.5 ms after. A column added later starts at the default: set it here too
-- (`drafts_and_their_items_keep_autoanalyze_small_on_every_column` fails otherwise).
ALTER TABLE drafts
    ALTER COLUMN id SET STATISTICS 10,
    ALTER COLUMN tenant_id SET STATISTICS 10,
    ALTER COLUMN status SET STATISTICS 10,
    ALTER COLUMN source SET STATISTICS 10,
    ALTER COLUMN customer_key SET STATISTICS 10,
    ALTER COLUMN customer_search SET STATISTICS 10,
    ALTER COLUMN created_at SET STATISTICS 10,
    ALTER COLUMN expires_at SET STATISTICS 10,
    ALTER COLUMN lease_until SET STATISTICS 10,
    ALTER COLUMN currency SET STATISTICS 0,
    ALTER COLUMN subtotal_minor SET STATISTICS 0,
    ALTER COLUMN discount_minor SET STATISTICS 0,
    ALTER COLUMN tax_minor SET STATISTICS 0,
    ALTER COLUMN shipping_minor SET STATISTICS 0,
    ALTER COLUMN total_minor SET STATISTICS 0,
    ALTER COLUMN notes SET STATISTICS 0,
    ALTER COLUMN version SET STATISTICS 0,
    ALTER COLUMN updated_at SET STATISTICS 0,
    ALTER COLUMN lease_owner SET STATISTICS 0,
    ALTER COLUMN approval_attempts SET STATISTICS 0,
    ALTER COLUMN approved_by SET STATISTICS 0,
    ALTER COLUMN reservation_reference SET STATISTICS 0,
    ALTER COLUMN order_id SET STATISTICS 0,
    ALTER COLUMN order_code SET STATISTICS 0,
    ALTER COLUMN rejected_reason SET STATISTICS 0,
    ALTER COLUMN last_error SET STATISTICS 0;
