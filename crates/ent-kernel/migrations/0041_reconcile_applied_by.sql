-- What rendered a tenant's applied objects, beside `applied_hash` (which hashes it all):
-- the hash of the tenant's own inputs, and the platform side of the render (the render
-- version, a fingerprint of the cluster configuration, when the writer's process started).
-- During a rolling upgrade an older replica leaves alone what a newer one applied from the
-- same tenant inputs, instead of rolling it back. NULL: not known (nothing applied, a
-- failure, or written by an earlier release).
ALTER TABLE tenants ADD COLUMN applied_inputs_hash TEXT;
ALTER TABLE tenants ADD COLUMN applied_render_version BIGINT;
ALTER TABLE tenants ADD COLUMN applied_cluster_hash TEXT;
ALTER TABLE tenants ADD COLUMN applied_started_at TEXT;
