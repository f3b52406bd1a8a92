-- Where a tenant is declared: NULL for the API, the console and `entctl apply`;
-- `EntTenant <namespace>/<name>` for a custom resource `entctl operator` watches.
-- A tenant declared by a resource is changed through it only (the API answers 409),
-- and a resource never adopts a tenant the API created.
ALTER TABLE tenants ADD COLUMN declared_by TEXT;
