-- The lockout's counts (auth_failures, 0034) notify a channel of their own, entcp_lockout,
-- instead of the registry's: a failure counted on one replica drops the cached lockout reads
-- of every replica (kernel throttle.rs, store/cache.rs: one entry per key checked) and no
-- longer their cached registry reads. SQLite needs nothing here (PRAGMA data_version).
-- postgres only
CREATE FUNCTION entcp_lockout_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('entcp_lockout', '');
    RETURN NULL;
END
$$;
DROP TRIGGER auth_failures_changed ON auth_failures;
CREATE TRIGGER auth_failures_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON auth_failures
    FOR EACH STATEMENT EXECUTE FUNCTION entcp_lockout_changed();
