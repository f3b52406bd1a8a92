-- Back-fill of `tenants.retained_services` (migration 0048) for the services tenants dropped
-- before that release: their volumes were kept (nothing purged them), but only the reconciler
-- of 0048 and later records a dropped service, so the RGPD register said nothing of those.
--
-- SQL alone cannot derive them on both backends: whether a service keeps data is the
-- configured catalog's (`storage_gib_per_1000`, overlays of `catalog_dir` included), and the
-- audit of a tenant's changes (`tenants.create`, `tenants.configure`: the whole spec) names
-- bouquet and option ids, not services, in a JSON text each backend reads with other functions.
-- This migration therefore records the step as pending; the program that migrates the store
-- with its catalog runs it once (`ent_tenants::provisioning::backfill::retained_services`,
-- after the migrations of every entctl command that migrates), claiming its row in the
-- transaction that writes the tenants (`done_at`, `outcome`): a second run adds nothing.
--
-- The step's reasoning: a tenant ran the services of every spec from the one in force at its
-- first move to `provisioning` (audited `tenants.transition`; none recorded: every spec), in
-- every version of each bouquet and option the catalog still has (the catalog of that time
-- is unknown), plus its `applied_services` (0047). Those it does not run now (the reconciler's
-- resolution) and whose service has storage are retained, as `reconcile::retained_after`
-- says; requested and purged tenants get nothing. Where the past is unknown it lists more,
-- never less: a DPO checks a listed processing, an unlisted one is missed.
CREATE TABLE data_backfills (
    name    TEXT PRIMARY KEY,
    done_at TEXT,
    outcome TEXT
);
INSERT INTO data_backfills (name) VALUES ('retained_services');
