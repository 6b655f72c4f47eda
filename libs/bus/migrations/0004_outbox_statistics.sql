-- Autoanalyze samples 300 rows per point of a column's statistics target (30,000 at the default
-- 100) and sorts each column's sample. On the outbox, with its kilobyte payloads, that was about a
-- tenth of a second of CPU per schema per autovacuum round under load, on a machine with two
-- cores. Nothing here is planned from a histogram (the relay reads a partial index, the prune a
-- range of another, the writes conflict on a key): 3,000 sampled rows are plenty, and payloads and
-- headers are never compared at all. A column added later starts at the default: set it here too.
ALTER TABLE outbox
    ALTER COLUMN seq SET STATISTICS 10,
    ALTER COLUMN event_id SET STATISTICS 10,
    ALTER COLUMN subject SET STATISTICS 10,
    ALTER COLUMN partition_key SET STATISTICS 10,
    ALTER COLUMN created_at SET STATISTICS 10,
    ALTER COLUMN published_at SET STATISTICS 10,
    ALTER COLUMN payload SET STATISTICS 0,
    ALTER COLUMN headers SET STATISTICS 0;
ALTER TABLE inbox
    ALTER COLUMN consumer SET STATISTICS 10,
    ALTER COLUMN event_id SET STATISTICS 10,
    ALTER COLUMN processed_at SET STATISTICS 10;
