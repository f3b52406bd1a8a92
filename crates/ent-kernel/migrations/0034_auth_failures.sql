-- Failed authentications (bearer tokens, console sign-ins), counted in the database so that
-- every replica sees the same count and a restart forgets none. One row per scope, key and
-- instant of failure, counted up by an atomic upsert; rows that left the window are deleted.
CREATE TABLE auth_failures (
    scope     TEXT   NOT NULL,
    subject   TEXT   NOT NULL,
    failed_at TEXT   NOT NULL,
    failures  BIGINT NOT NULL,
    PRIMARY KEY (scope, subject, failed_at)
);

CREATE INDEX auth_failures_expiry ON auth_failures (scope, failed_at);

-- The keys over their limit are a cached read (kernel throttle.rs, store/cache.rs): every
-- replica learns at commit that a failure was counted elsewhere, as for the registry (0018).
-- postgres only
CREATE TRIGGER auth_failures_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON auth_failures
    FOR EACH STATEMENT EXECUTE FUNCTION entcp_registry_changed();
