-- Convention instances, their parties and covered schools, the visa and
-- signature steps, uploaded signed copies, and the reminders already sent.
CREATE TABLE conventions (
    id                    TEXT PRIMARY KEY,
    reference             TEXT NOT NULL UNIQUE,
    model_id              TEXT NOT NULL,
    model_version         BIGINT NOT NULL,
    title                 TEXT NOT NULL,
    status                TEXT NOT NULL,
    parameters            TEXT NOT NULL,
    start_date            TEXT NOT NULL,
    end_date              TEXT NOT NULL,
    amends_id             TEXT REFERENCES conventions (id),
    root_id               TEXT NOT NULL,
    document_hash         TEXT,
    submitted_at          TEXT,
    signed_at             TEXT,
    refusal_comment       TEXT,
    termination_reason    TEXT,
    termination_effective TEXT,
    version               BIGINT NOT NULL DEFAULT 1,
    created_by            TEXT NOT NULL,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
);
CREATE INDEX conventions_by_status ON conventions (status, end_date);
CREATE INDEX conventions_by_root ON conventions (root_id);

CREATE TABLE convention_parties (
    convention_id TEXT NOT NULL REFERENCES conventions (id),
    party_key     TEXT NOT NULL,
    org_id        TEXT NOT NULL REFERENCES orgs (id),
    position      BIGINT NOT NULL,
    PRIMARY KEY (convention_id, party_key, org_id)
);
CREATE INDEX convention_parties_by_org ON convention_parties (org_id);

CREATE TABLE convention_schools (
    convention_id TEXT NOT NULL REFERENCES conventions (id),
    org_id        TEXT NOT NULL REFERENCES orgs (id),
    PRIMARY KEY (convention_id, org_id)
);
CREATE INDEX convention_schools_by_org ON convention_schools (org_id);

-- A visa or a signature; voided ones stay for the record.
CREATE TABLE convention_steps (
    id            TEXT PRIMARY KEY,
    convention_id TEXT NOT NULL REFERENCES conventions (id),
    kind          TEXT NOT NULL,
    step_key      TEXT NOT NULL,
    org_id        TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    user_email    TEXT NOT NULL,
    role          TEXT NOT NULL,
    document_hash TEXT NOT NULL,
    at            TEXT NOT NULL,
    voided_at     TEXT,
    void_reason   TEXT
);
CREATE INDEX convention_steps_by_convention ON convention_steps (convention_id, kind);

CREATE TABLE convention_files (
    id            TEXT PRIMARY KEY,
    convention_id TEXT NOT NULL REFERENCES conventions (id),
    file_name     TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    size          BIGINT NOT NULL,
    content       BLOB NOT NULL,
    uploaded_by   TEXT NOT NULL,
    uploaded_at   TEXT NOT NULL
);

CREATE TABLE convention_reminders (
    convention_id TEXT NOT NULL REFERENCES conventions (id),
    reminder      TEXT NOT NULL,
    sent_at       TEXT NOT NULL,
    PRIMARY KEY (convention_id, reminder)
);
