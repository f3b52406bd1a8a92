-- The codes of the services a tenant's objects were last applied with (a JSON array), kept
-- after a failed apply. When the catalog no longer resolves the tenant's bouquet and options
-- (an overlay or a release changed a bouquet), the reconciler renders it with these services,
-- so that a suspension, a decommissioning or a purge still reaches the cluster. NULL: never
-- applied, or applied by an earlier release.
ALTER TABLE tenants ADD COLUMN applied_services TEXT;
