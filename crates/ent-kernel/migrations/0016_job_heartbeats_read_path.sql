-- Job runs carry a heartbeat: a run whose runner stopped beating (killed
-- process) is marked `abandoned` by the next scheduler pass of any process.
ALTER TABLE job_runs ADD COLUMN heartbeat_at TEXT;
CREATE INDEX job_runs_running ON job_runs (outcome, heartbeat_at);

-- A DAN's (DSDEN's) organisation list is `academie_code = ?` (`departement_code = ?`)
-- ordered by (sort_name, id): these indexes serve a page by reading its rows only,
-- where the (code, kind) indexes read the whole académie and sorted it.
CREATE INDEX orgs_by_academie_name ON orgs (academie_code, sort_name, id);
CREATE INDEX orgs_by_departement_name ON orgs (departement_code, sort_name, id);
