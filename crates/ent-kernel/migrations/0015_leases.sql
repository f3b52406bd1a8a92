-- Leases that let a crashed or disconnected process's work be taken over.

-- An Idempotency-Key in flight is held for a short lease, renewed while its
-- handler runs; a key left in flight by a crash can be claimed again once it
-- ran out. The replayed response keeps its headers (ETag, Location).
ALTER TABLE idempotency_keys ADD COLUMN locked_until TEXT;
ALTER TABLE idempotency_keys ADD COLUMN headers TEXT;

-- One writer per tenant across processes: a reconciler holds the tenant's row
-- while it writes the tenant's objects, until it releases it or it expires.
CREATE TABLE tenant_leases (
    tenant_id  TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
