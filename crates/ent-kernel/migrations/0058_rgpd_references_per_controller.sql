-- Breach and data-subject request references are numbered per controller and year
-- (VIOL-2026-000001 in each controller's breach log), no longer from one platform-wide
-- counter: a reference is unique within its organisation's log, no longer platform-wide.
-- Each number is taken as one above the highest its log holds that year, so the counters
-- of 0033 serve no more. Both tables are rebuilt (SQLite cannot drop a column's UNIQUE), with
-- their columns in the same order and every row as it was.
DELETE FROM counters WHERE series IN ('VIOL', 'DEM');

CREATE TABLE rgpd_breaches_rebuilt (
    id                 TEXT PRIMARY KEY,
    reference          TEXT NOT NULL,
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
    updated_at         TEXT NOT NULL,
    people_categories  TEXT NOT NULL DEFAULT '[]',
    risk               TEXT NOT NULL DEFAULT 'unassessed',
    cnil_reference     TEXT NOT NULL DEFAULT '',
    people_exception   TEXT NOT NULL DEFAULT 'none',
    people_reason      TEXT NOT NULL DEFAULT ''
);
INSERT INTO rgpd_breaches_rebuilt (id, reference, org_id, title, facts, occurred_at, aware_at, data_categories,
    people_approx, records_approx, consequences, measures, cnil_decision, cnil_notified_at, cnil_reason,
    people_notified_at, version, created_by, created_at, updated_at, people_categories, risk, cnil_reference,
    people_exception, people_reason)
SELECT id, reference, org_id, title, facts, occurred_at, aware_at, data_categories,
    people_approx, records_approx, consequences, measures, cnil_decision, cnil_notified_at, cnil_reason,
    people_notified_at, version, created_by, created_at, updated_at, people_categories, risk, cnil_reference,
    people_exception, people_reason
FROM rgpd_breaches;
DROP TABLE rgpd_breaches;
ALTER TABLE rgpd_breaches_rebuilt RENAME TO rgpd_breaches;
CREATE INDEX rgpd_breaches_by_org ON rgpd_breaches (org_id, aware_at);
CREATE UNIQUE INDEX rgpd_breaches_reference_per_org ON rgpd_breaches (org_id, reference);

CREATE TABLE rgpd_requests_rebuilt (
    id                    TEXT PRIMARY KEY,
    reference             TEXT NOT NULL,
    org_id                TEXT NOT NULL REFERENCES orgs (id),
    kind                  TEXT NOT NULL,
    requester             TEXT NOT NULL,
    received_on           TEXT NOT NULL,
    due_on                TEXT NOT NULL,
    status                TEXT NOT NULL,
    answered_on           TEXT,
    notes                 TEXT NOT NULL DEFAULT '',
    version               BIGINT NOT NULL DEFAULT 1,
    created_by            TEXT NOT NULL,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    extension_notified_on TEXT
);
INSERT INTO rgpd_requests_rebuilt (id, reference, org_id, kind, requester, received_on, due_on, status, answered_on,
    notes, version, created_by, created_at, updated_at, extension_notified_on)
SELECT id, reference, org_id, kind, requester, received_on, due_on, status, answered_on,
    notes, version, created_by, created_at, updated_at, extension_notified_on
FROM rgpd_requests;
DROP TABLE rgpd_requests;
ALTER TABLE rgpd_requests_rebuilt RENAME TO rgpd_requests;
CREATE INDEX rgpd_requests_by_org ON rgpd_requests (org_id, received_on);
CREATE UNIQUE INDEX rgpd_requests_reference_per_org ON rgpd_requests (org_id, reference);
-- postgres only
ALTER INDEX rgpd_breaches_rebuilt_pkey RENAME TO rgpd_breaches_pkey;
ALTER TABLE rgpd_breaches RENAME CONSTRAINT rgpd_breaches_rebuilt_org_id_fkey TO rgpd_breaches_org_id_fkey;
ALTER INDEX rgpd_requests_rebuilt_pkey RENAME TO rgpd_requests_pkey;
ALTER TABLE rgpd_requests RENAME CONSTRAINT rgpd_requests_rebuilt_org_id_fkey TO rgpd_requests_org_id_fkey;
