-- The reservations of (tenant, reference) pairs, locked, read by a query with a snapshot of its
-- own. A reservation batch calls it in the statement that takes the references' advisory locks,
-- with the number of locks taken as an argument, so it runs after they are held; and because it
-- is VOLATILE its query takes a new snapshot when it runs (a STABLE function, or the statement
-- itself, would read with the snapshot taken before the locks waited), so it sees what the
-- locks' previous holders committed. That is what lets one statement do what took two.
CREATE FUNCTION reservations_after_locks(tenants UUID[], refs TEXT[], locks_taken BIGINT)
RETURNS TABLE (tenant_id UUID, reference TEXT, status TEXT, created_at TIMESTAMPTZ)
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT r.tenant_id, r.reference, r.status, r.created_at
    FROM UNNEST(tenants, refs) AS k(tenant_id, reference)
    CROSS JOIN LATERAL (
        SELECT * FROM reservations r
        WHERE r.tenant_id = k.tenant_id AND r.reference = k.reference AND locks_taken >= 0
        FOR UPDATE
    ) r;
END;
