-- RGPD registers: the contacts a register needs that the registry does not hold
-- (head, DPO, representative), the snapshots of every export, when each entry was
-- first recorded and last changed, the breach log and the data-subject requests.
CREATE TABLE rgpd_profiles (
    org_id              TEXT PRIMARY KEY REFERENCES orgs (id),
    head_name           TEXT NOT NULL DEFAULT '',
    head_title          TEXT NOT NULL DEFAULT '',
    address             TEXT NOT NULL DEFAULT '',
    phone               TEXT NOT NULL DEFAULT '',
    email               TEXT NOT NULL DEFAULT '',
    dpo_name            TEXT NOT NULL DEFAULT '',
    dpo_email           TEXT NOT NULL DEFAULT '',
    dpo_phone           TEXT NOT NULL DEFAULT '',
    dpo_address         TEXT NOT NULL DEFAULT '',
    representative      TEXT NOT NULL DEFAULT '',
    security_measures   TEXT NOT NULL DEFAULT '',
    version             BIGINT NOT NULL DEFAULT 1,
    updated_by          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);

CREATE TABLE rgpd_snapshots (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs (id),
    reason     TEXT NOT NULL,
    format     TEXT NOT NULL,
    content    TEXT NOT NULL,
    sha256     TEXT NOT NULL,
    entries    BIGINT NOT NULL,
    taken_by   TEXT NOT NULL,
    taken_at   TEXT NOT NULL
);
CREATE INDEX rgpd_snapshots_by_org ON rgpd_snapshots (org_id, taken_at);

CREATE TABLE rgpd_entry_history (
    org_id            TEXT NOT NULL REFERENCES orgs (id),
    entry_key         TEXT NOT NULL,
    content_hash      TEXT NOT NULL,
    first_recorded_at TEXT NOT NULL,
    last_changed_at   TEXT NOT NULL,
    PRIMARY KEY (org_id, entry_key)
);

CREATE TABLE rgpd_breaches (
    id                 TEXT PRIMARY KEY,
    reference          TEXT NOT NULL UNIQUE,
    org_id             TEXT NOT NULL REFERENCES orgs (id),
    title              TEXT NOT NULL,
    facts              TEXT NOT NULL,
    occurred_at        TEXT,
    aware_at           TEXT NOT NULL,
    data_categories    TEXT NOT NULL,
    people_approx      BIGINT NOT NULL,
    records_approx     BIGINT NOT NULL,
    consequences       TEXT NOT NULL,
    measures           TEXT NOT NULL,
    cnil_decision      TEXT NOT NULL,
    cnil_notified_at   TEXT,
    cnil_reason        TEXT NOT NULL DEFAULT '',
    people_notified_at TEXT,
    version            BIGINT NOT NULL DEFAULT 1,
    created_by         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
CREATE INDEX rgpd_breaches_by_org ON rgpd_breaches (org_id, aware_at);

CREATE TABLE rgpd_requests (
    id            TEXT PRIMARY KEY,
    reference     TEXT NOT NULL UNIQUE,
    org_id        TEXT NOT NULL REFERENCES orgs (id),
    kind          TEXT NOT NULL,
    requester     TEXT NOT NULL,
    received_on   TEXT NOT NULL,
    due_on        TEXT NOT NULL,
    status        TEXT NOT NULL,
    answered_on   TEXT,
    notes         TEXT NOT NULL DEFAULT '',
    version       BIGINT NOT NULL DEFAULT 1,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX rgpd_requests_by_org ON rgpd_requests (org_id, received_on);
