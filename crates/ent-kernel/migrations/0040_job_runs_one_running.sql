-- A job runs once at a time, whatever started it (its tick, a retry, a manual run) and on
-- whichever replica: at most one `running` row per job. Runs left `running` side by side
-- by earlier releases keep the newest; the others become `abandoned`.
UPDATE job_runs SET outcome = 'abandoned', finished_at = COALESCE(finished_at, started_at),
    message = COALESCE(message, 'abandonnée : une autre exécution de la tâche était en cours')
WHERE outcome = 'running' AND EXISTS (
    SELECT 1 FROM job_runs newer WHERE newer.job = job_runs.job AND newer.outcome = 'running'
        AND (newer.started_at > job_runs.started_at
             OR (newer.started_at = job_runs.started_at AND newer.id > job_runs.id)));
CREATE UNIQUE INDEX job_runs_one_running ON job_runs (job) WHERE outcome = 'running';
