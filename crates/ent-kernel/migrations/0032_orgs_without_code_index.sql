-- orgs_by_code (code) served one query, an organisation named by a bare code
-- (`resolve_org`), which now reads the unique (kind, code) index once per kind. Each index
-- costs every write of orgs and a sort of the whole table when the annuaire's first import
-- builds it again.
DROP INDEX IF EXISTS orgs_by_code;
-- A first import interrupted while it was set aside must not build it again.
DELETE FROM deferred_indexes WHERE name = 'orgs_by_code';
