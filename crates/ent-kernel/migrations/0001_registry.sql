-- Organisation registry: one table for every kind of organisation.
-- Codes are natural keys per kind (UAI, INSEE, SIREN, département/académie/région codes).
CREATE TABLE orgs (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    code             TEXT NOT NULL,
    name             TEXT NOT NULL,
    sort_name        TEXT NOT NULL,
    siren            TEXT,
    siret            TEXT,
    etab_type        TEXT,
    nature_code      TEXT,
    nature_label     TEXT,
    sector           TEXT,
    degree           TEXT,
    commune_code     TEXT,
    departement_code TEXT,
    academie_code    TEXT,
    region_code      TEXT,
    pupils           BIGINT,
    is_open          BIGINT NOT NULL DEFAULT 1,
    email            TEXT,
    content_hash     TEXT NOT NULL,
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    UNIQUE (kind, code)
);
CREATE INDEX orgs_by_sort_name ON orgs (sort_name, id);
CREATE INDEX orgs_by_academie ON orgs (academie_code, kind);
CREATE INDEX orgs_by_departement ON orgs (departement_code, kind);
CREATE INDEX orgs_by_commune ON orgs (commune_code, kind);
CREATE INDEX orgs_by_region ON orgs (region_code, kind);
CREATE INDEX orgs_by_code ON orgs (code);

-- Communes grouped in an EPCI or a syndicat mixte; `ent_delegated` = the commune
-- handed its ENT to the group, which then funds its écoles.
CREATE TABLE org_members (
    group_id      TEXT NOT NULL REFERENCES orgs (id),
    member_id     TEXT NOT NULL REFERENCES orgs (id),
    ent_delegated BIGINT NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX org_members_by_member ON org_members (member_id);
