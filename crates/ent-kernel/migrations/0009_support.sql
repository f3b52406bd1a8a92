-- Support desk: contracts (who is N1/N2/N3 and under which policy), tickets,
-- their event log (the SLA is derived from it), per-level clocks and breaches.

-- Attached to a tenant's organisation, its collectivité or its académie; the
-- nearest one giving a field wins.
CREATE TABLE support_contracts (
    org_id     TEXT PRIMARY KEY REFERENCES orgs (id),
    n1_org_id  TEXT REFERENCES orgs (id),
    n2_org_id  TEXT REFERENCES orgs (id),
    n3_org_id  TEXT REFERENCES orgs (id),
    policy     TEXT,
    version    BIGINT NOT NULL DEFAULT 1,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE support_counters (
    year BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);

CREATE TABLE support_tickets (
    id                 TEXT PRIMARY KEY,
    reference          TEXT NOT NULL UNIQUE,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    tenant_org_id      TEXT NOT NULL REFERENCES orgs (id),
    requester_id       TEXT NOT NULL REFERENCES users (id),
    requester_role     TEXT NOT NULL,
    requester_shared   BIGINT NOT NULL DEFAULT 0,
    subject            TEXT NOT NULL,
    description        TEXT NOT NULL,
    category           TEXT NOT NULL,
    service            TEXT,
    impact             TEXT NOT NULL,
    urgency            TEXT NOT NULL,
    priority           TEXT NOT NULL,
    policy             TEXT NOT NULL,
    level              TEXT NOT NULL,
    reached_n3         BIGINT NOT NULL DEFAULT 0,
    n1_org_id          TEXT NOT NULL REFERENCES orgs (id),
    n2_org_id          TEXT REFERENCES orgs (id),
    n3_org_id          TEXT REFERENCES orgs (id),
    assigned_team      TEXT,
    assignee_id        TEXT REFERENCES users (id),
    status             TEXT NOT NULL,
    first_response_due TEXT,
    resolution_due     TEXT,
    next_due           TEXT,
    breaches           BIGINT NOT NULL DEFAULT 0,
    convention_flag    TEXT,
    resolved_at        TEXT,
    closed_at          TEXT,
    version            BIGINT NOT NULL DEFAULT 1,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);
-- The sweep reads only tickets whose earliest unflagged due date has passed.
CREATE INDEX support_tickets_next_due ON support_tickets (next_due);
CREATE INDEX support_tickets_by_org ON support_tickets (tenant_org_id, id);
CREATE INDEX support_tickets_by_requester ON support_tickets (requester_id, id);
CREATE INDEX support_tickets_by_vendor ON support_tickets (n3_org_id, reached_n3, id);
CREATE INDEX support_tickets_resolved ON support_tickets (status, resolved_at);
CREATE INDEX support_tickets_by_level ON support_tickets (level, status);

-- visibility: public (requester too), support (N1, N2, N3), internal (N1, N2).
CREATE TABLE support_events (
    id            TEXT PRIMARY KEY,
    ticket_id     TEXT NOT NULL REFERENCES support_tickets (id),
    seq           BIGINT NOT NULL,
    at            TEXT NOT NULL,
    actor         TEXT NOT NULL,
    actor_user_id TEXT,
    actor_level   TEXT,
    kind          TEXT NOT NULL,
    from_value    TEXT,
    to_value      TEXT,
    visibility    TEXT NOT NULL,
    body          TEXT
);
CREATE UNIQUE INDEX support_events_by_ticket ON support_events (ticket_id, seq);

-- Each level's clock as of the last event, for reports.
CREATE TABLE support_ticket_levels (
    ticket_id              TEXT NOT NULL REFERENCES support_tickets (id),
    level                  TEXT NOT NULL,
    tenant_id              TEXT NOT NULL,
    held_seconds           BIGINT NOT NULL,
    first_response_seconds BIGINT,
    resolution_seconds     BIGINT,
    breached               BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (ticket_id, level)
);
-- Reports: counts per level and nearest-rank percentiles read through the index.
CREATE INDEX support_ticket_levels_by_level ON support_ticket_levels (level, breached);
CREATE INDEX support_ticket_levels_first ON support_ticket_levels (level, first_response_seconds);
CREATE INDEX support_ticket_levels_resolution ON support_ticket_levels (level, resolution_seconds);

CREATE TABLE support_breaches (
    ticket_id   TEXT NOT NULL REFERENCES support_tickets (id),
    level       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    due_at      TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    PRIMARY KEY (ticket_id, level, kind)
);
