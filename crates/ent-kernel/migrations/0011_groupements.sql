-- Group purchases (groupements de commandes): the purchase, its members'
-- applications, and the versioned documents generated for it.
CREATE TABLE groupements (
    id                   TEXT PRIMARY KEY,
    reference            TEXT NOT NULL UNIQUE,
    coordinator_org_id   TEXT NOT NULL REFERENCES orgs (id),
    title                TEXT NOT NULL,
    object               TEXT NOT NULL,
    -- JSON: lots, bouquet, support obligations, cost key (the editable terms).
    terms                TEXT NOT NULL,
    application_deadline TEXT NOT NULL,
    consultation_date    TEXT,
    award_planned_date   TEXT,
    status               TEXT NOT NULL,
    convention_id        TEXT,
    -- JSON: vendor, amounts, dates, DECP facts; set at award.
    award                TEXT,
    vendor_org_id        TEXT REFERENCES orgs (id),
    decp_published_on    TEXT,
    version              BIGINT NOT NULL DEFAULT 1,
    created_by           TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX groupements_by_coordinator ON groupements (coordinator_org_id);

-- One row per (groupement, applicant): a commune is never a member twice;
-- a withdrawn or rejected applicant applying again reuses its row.
CREATE TABLE groupement_members (
    id                  TEXT PRIMARY KEY,
    groupement_id       TEXT NOT NULL REFERENCES groupements (id),
    org_id              TEXT NOT NULL REFERENCES orgs (id),
    status              TEXT NOT NULL,
    deliberation_number TEXT NOT NULL,
    deliberation_date   TEXT NOT NULL,
    schools             BIGINT NOT NULL,
    classes             BIGINT NOT NULL,
    pupils              BIGINT NOT NULL,
    teacher_accounts    BIGINT NOT NULL,
    parent_accounts     BIGINT NOT NULL,
    decision_reason     TEXT,
    version             BIGINT NOT NULL DEFAULT 1,
    applied_by          TEXT NOT NULL,
    applied_at          TEXT NOT NULL,
    decided_at          TEXT,
    updated_at          TEXT NOT NULL,
    UNIQUE (groupement_id, org_id)
);
CREATE INDEX groupement_members_by_org ON groupement_members (org_id);

-- Generated documents, one row per version of a kind; earlier versions stay.
CREATE TABLE groupement_documents (
    id            TEXT PRIMARY KEY,
    groupement_id TEXT NOT NULL REFERENCES groupements (id),
    kind          TEXT NOT NULL,
    version_no    BIGINT NOT NULL,
    title         TEXT NOT NULL,
    html          TEXT,
    odt           BLOB,
    ods           BLOB,
    sha256        TEXT NOT NULL,
    shared        BIGINT NOT NULL DEFAULT 0,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (groupement_id, kind, version_no)
);
CREATE INDEX groupement_documents_shared ON groupement_documents (shared, created_at);
