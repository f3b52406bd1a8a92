-- ENT tenants (one per établissement or commune) and their event log.
CREATE TABLE tenants (
    id                   TEXT PRIMARY KEY,
    slug                 TEXT NOT NULL UNIQUE,
    org_id               TEXT NOT NULL REFERENCES orgs (id),
    hostname             TEXT NOT NULL UNIQUE,
    base_bouquet         TEXT NOT NULL,
    options              TEXT NOT NULL,
    accounts             BIGINT NOT NULL,
    identity_source      TEXT NOT NULL,
    status               TEXT NOT NULL,
    gate_override_by     TEXT,
    gate_override_reason TEXT,
    convention_id        TEXT,
    spec_hash            TEXT NOT NULL,
    version              BIGINT NOT NULL DEFAULT 1,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX tenants_by_org ON tenants (org_id);

CREATE TABLE tenant_events (
    id        TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    message   TEXT NOT NULL
);
CREATE INDEX tenant_events_by_tenant ON tenant_events (tenant_id, at);
