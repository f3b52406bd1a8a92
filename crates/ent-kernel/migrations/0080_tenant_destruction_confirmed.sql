-- The attestation of destruction of a purged tenant's data is dated at the destruction the
-- provisioning backend reports, no longer at the purge that asks for it. The purge records what
-- it asks to destroy (tenant_destruction_requests: the namespace, the volumes as JSON, the
-- hébergeur and éditeur named as they were, the days of the retention, what its notice says);
-- the reconciler issues the attestation, once, when the backend reports the tenant removed, and
-- deletes the request in the same transaction. `destroyed_at`: when the cluster confirmed that
-- the namespace and its volumes are gone (kube); NULL when the backend cannot confirm it
-- (manifests for a GitOps tool: the attestation says the confirmation was not received), and for
-- an attestation issued before this migration, at the request (`requested_at` its attested_at).
CREATE TABLE tenant_destruction_requests (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id),
    requested_at TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    host_name TEXT,
    vendor_name TEXT,
    namespace TEXT NOT NULL,
    volumes TEXT NOT NULL,
    archived_on TEXT NOT NULL,
    ended_on TEXT NOT NULL,
    notice TEXT NOT NULL
);
ALTER TABLE tenant_destructions ADD COLUMN requested_at TEXT;
ALTER TABLE tenant_destructions ADD COLUMN destroyed_at TEXT;
UPDATE tenant_destructions SET requested_at = attested_at;
