-- Reconcile semantics of a controller (#18).

-- The inputs hash of the last failed apply: its backoff holds only while the
-- tenant's inputs stay the same; changed inputs are applied at once.
ALTER TABLE tenants ADD COLUMN failed_hash TEXT;

-- A reconciler renews its tenant leases while it writes and, at shutdown,
-- releases every lease it holds (by holder).
CREATE INDEX tenant_leases_by_holder ON tenant_leases (holder);
