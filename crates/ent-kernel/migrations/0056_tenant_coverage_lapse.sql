-- A running tenant (provisioning, active, suspended) whose convention ended: when the daily job
-- `tenants-coverage` found that no convention in force covers one of the établissements it
-- serves (the governance gate's own rule), and their codes (a JSON array of UAI, or the
-- organisation's code when it serves no école). NULL while every one is covered; cleared
-- when a convention covers them again. The tenant keeps running: the DAN decides.
ALTER TABLE tenants ADD COLUMN coverage_lapsed_at TEXT;
ALTER TABLE tenants ADD COLUMN coverage_uncovered TEXT;
-- `GET /api/v1/tenants?uncovered=true`, paged by slug.
CREATE INDEX tenants_coverage_lapsed ON tenants (slug) WHERE coverage_lapsed_at IS NOT NULL;
-- The open tickets of a tenant: those the support sweep closes once it is purged, those that
-- hold its purge (`purge::Holds::of`).
CREATE INDEX support_tickets_open_by_tenant ON support_tickets (tenant_id) WHERE status NOT IN ('resolved', 'closed');
