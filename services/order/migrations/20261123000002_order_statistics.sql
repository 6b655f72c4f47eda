-- `orders` was analyzed on every column from 30,000-row samples: under the approval benchmark,
-- 0.08 s of CPU in each autovacuum round (every 10 s while the table grows). The listing and the
-- summary plan from the statistics of the columns they filter, sort and group on (tenant, status,
-- payment status, source, dates, total, currency, the search text, whose LIKE estimate needs a
-- histogram of 100 entries): those stay at the default. The columns no query filters, sorts or
-- groups on (the other amounts, bookkeeping, TikTok fields, keys only looked up through their
-- unique index) get none, which halves the work.
ALTER TABLE orders
    ALTER COLUMN code SET STATISTICS 0,
    ALTER COLUMN source_id SET STATISTICS 0,
    ALTER COLUMN reservation_reference SET STATISTICS 0,
    ALTER COLUMN subtotal_minor SET STATISTICS 0,
    ALTER COLUMN discount_minor SET STATISTICS 0,
    ALTER COLUMN tax_minor SET STATISTICS 0,
    ALTER COLUMN shipping_minor SET STATISTICS 0,
    ALTER COLUMN paid_minor SET STATISTICS 0,
    ALTER COLUMN refunded_minor SET STATISTICS 0,
    ALTER COLUMN notes SET STATISTICS 0,
    ALTER COLUMN tags SET STATISTICS 0,
    ALTER COLUMN attention SET STATISTICS 0,
    ALTER COLUMN platform_update_time SET STATISTICS 0,
    ALTER COLUMN platform_shop_id SET STATISTICS 0,
    ALTER COLUMN platform_packages SET STATISTICS 0,
    ALTER COLUMN version SET STATISTICS 0,
    ALTER COLUMN updated_at SET STATISTICS 0;
