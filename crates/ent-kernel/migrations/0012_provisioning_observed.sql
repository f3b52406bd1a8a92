-- What the backend last reported about a tenant's workloads (kube: Deployments
-- available), and the dates of the retention purge.
ALTER TABLE tenants ADD COLUMN observed TEXT;
ALTER TABLE tenants ADD COLUMN observed_detail TEXT;
ALTER TABLE tenants ADD COLUMN observed_at TEXT;
ALTER TABLE tenants ADD COLUMN archived_at TEXT;
ALTER TABLE tenants ADD COLUMN purged_at TEXT;
CREATE INDEX tenants_by_status ON tenants (status, archived_at);
