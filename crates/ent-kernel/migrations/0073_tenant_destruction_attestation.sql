-- The attestation of destruction of a purged tenant's data (the conventions' article
-- « Réversibilité »: at the end of the restitution the éditeur and the hébergeur destroy the data
-- and give the collectivité an attestation, which it passes to the controller). Written by the
-- purge, in its transaction, once per tenant: who attests and when, what was destroyed (the
-- namespace, the volumes as JSON, what the platform knows of backups), for whom (the hébergeur
-- and the éditeur named as they were), and the HTML document itself with its SHA-256, never
-- rendered again.
CREATE TABLE tenant_destructions (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants (id),
    reference TEXT NOT NULL UNIQUE,
    attested_at TEXT NOT NULL,
    attested_by TEXT NOT NULL,
    host_name TEXT,
    vendor_name TEXT,
    namespace TEXT NOT NULL,
    volumes TEXT NOT NULL,
    backups TEXT NOT NULL,
    document TEXT NOT NULL,
    sha256 TEXT NOT NULL
);
