-- Marking a row published leaves its old version's entry in `outbox_unpublished` until a vacuum
-- removes it, and every relay poll walks those entries from the lowest seq up: between two
-- vacuums under load a poll cost 0.7 ms and read ~280 pages to find a handful of rows. Vacuum the
-- outbox after every 10,000 changed rows instead of after a fifth of the table (which, with a
-- day of published rows kept, is hours of traffic); the cost is a vacuum every few seconds at
-- most, and its pages are the recent ones.
ALTER TABLE outbox SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_cost_delay = 0
);
