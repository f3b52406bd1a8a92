-- Job runs carry a heartbeat: a run whose runner stopped beating (killed
-- process) is marked `abandoned` by the next scheduler pass of any process.
ALTER TABLE job_runs ADD COLUMN heartbeat_at TEXT;
CREATE INDEX job_runs_running ON job_runs (outcome, heartbeat_at);
