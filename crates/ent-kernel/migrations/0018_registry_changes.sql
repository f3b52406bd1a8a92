-- Every replica's cache of registry reads (kernel store/cache.rs) learns at commit that
-- the organisations changed. SQLite needs nothing here: each connection sees any commit
-- through PRAGMA data_version. On PostgreSQL a statement on orgs or org_members
-- notifies the channel entcp_registry when its transaction commits (not before, and
-- not if it rolls back); notifications of one transaction are sent once.
-- postgres only
CREATE FUNCTION entcp_registry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('entcp_registry', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER orgs_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON orgs
    FOR EACH STATEMENT EXECUTE FUNCTION entcp_registry_changed();
CREATE TRIGGER org_members_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON org_members
    FOR EACH STATEMENT EXECUTE FUNCTION entcp_registry_changed();
