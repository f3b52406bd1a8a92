-- Two indexes of orgs are prefixes of wider ones: orgs_by_academie (academie_code, kind)
-- and orgs_by_departement (departement_code, kind) are served by orgs_by_academie_name
-- (academie_code, sort_name, id) and orgs_by_departement_name (departement_code,
-- sort_name, id), which also give the page order. Each index costs every write of
-- orgs and a sort of the whole table when the annuaire's first import builds it again.
DROP INDEX IF EXISTS orgs_by_academie;
DROP INDEX IF EXISTS orgs_by_departement;
-- A first import interrupted while they were set aside must not build them again.
DELETE FROM deferred_indexes WHERE name IN ('orgs_by_academie', 'orgs_by_departement');
