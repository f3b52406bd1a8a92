-- What the reconciler last applied for each tenant, and its retry state.
ALTER TABLE tenants ADD COLUMN applied_hash TEXT;
ALTER TABLE tenants ADD COLUMN reconciled_at TEXT;
ALTER TABLE tenants ADD COLUMN reconcile_error TEXT;
ALTER TABLE tenants ADD COLUMN reconcile_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN retry_at TEXT;
