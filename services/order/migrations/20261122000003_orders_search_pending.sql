-- The search index takes new orders into a pending list first (GIN "fast update"), and the insert
-- that finds the list over its limit merges all of it into the index before it can commit. With
-- the 4 MB default that was every few thousand orders, and one CreateOrder batch waited tens of
-- milliseconds for it (88 ms at worst in an approval benchmark). A 256 kB list is merged in
-- pieces a sixteenth the size; autovacuum merges it too. Search results are unchanged: queries
-- read the pending list as well.
ALTER INDEX orders_search SET (gin_pending_list_limit = 256);
