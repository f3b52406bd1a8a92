-- The codes of the services whose data a tenant still holds though they no longer run (a
-- JSON array): an option removed from its bouquet (or a bouquet version without the service)
-- leaves the service's volume on the backend, kept until the tenant is purged. Recorded by the
-- reconciler when it applies a change, cleared by the purge; the RGPD register lists those
-- processings until then. NULL: none (or never recorded).
ALTER TABLE tenants ADD COLUMN retained_services TEXT;
