-- Conventions as the parties sign them.
-- The rendered document frozen at each submission (and at each edit in signature):
-- one row per version and format (html, odt, pdf when a converter exists, and json:
-- the document model the full document is rebuilt from). The fingerprint every
-- signature binds is the sha256 of the html row of the current version.
CREATE TABLE convention_documents (
    convention_id TEXT NOT NULL REFERENCES conventions (id),
    version_no    BIGINT NOT NULL,
    format        TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    size          BIGINT NOT NULL,
    content       BLOB NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (convention_id, version_no, format)
);

-- Who represents each party and the act that empowers them (JSON object), where
-- the party signs.
ALTER TABLE convention_parties ADD COLUMN signatory TEXT;

-- The convention this one explicitly replaces (its RGPD roles differ), and why a
-- start date in the past was allowed.
ALTER TABLE conventions ADD COLUMN supersedes_id TEXT;
ALTER TABLE conventions ADD COLUMN backdate_reason TEXT;

-- The schools an audited gate override let through uncovered (JSON list of UAI).
ALTER TABLE tenants ADD COLUMN gate_uncovered TEXT;
