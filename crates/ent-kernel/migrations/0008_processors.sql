-- Who processes a tenant's data: its vendor (éditeur) and host (hébergeur), the
-- country of every organisation (transfers outside the EU are computed from it),
-- and the contracts that bind processors (Art. 28 RGPD), sub-processor chains included.
ALTER TABLE tenants ADD COLUMN vendor_org_id TEXT REFERENCES orgs (id);
ALTER TABLE tenants ADD COLUMN host_org_id TEXT REFERENCES orgs (id);
CREATE INDEX tenants_by_vendor ON tenants (vendor_org_id);

ALTER TABLE orgs ADD COLUMN country TEXT NOT NULL DEFAULT 'FR';

CREATE TABLE processor_contracts (
    id                      TEXT PRIMARY KEY,
    processor_org_id        TEXT NOT NULL REFERENCES orgs (id),
    -- The organisation the processor acts for: a controller, or the processor
    -- above it in a chain (then parent_processor_org_id says which).
    client_org_id           TEXT NOT NULL REFERENCES orgs (id),
    parent_processor_org_id TEXT REFERENCES orgs (id),
    reference               TEXT NOT NULL,
    title                   TEXT NOT NULL,
    art28_clauses           BIGINT NOT NULL,
    starts_on               TEXT,
    ends_on                 TEXT,
    source_kind             TEXT NOT NULL,
    source_id               TEXT,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    UNIQUE (processor_org_id, client_org_id, reference)
);
CREATE INDEX processor_contracts_by_client ON processor_contracts (client_org_id);
