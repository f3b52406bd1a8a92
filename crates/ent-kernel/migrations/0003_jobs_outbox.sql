-- Scheduled jobs and the e-mail outbox.

-- One row per job run. A scheduled run claims its tick by inserting the row:
-- UNIQUE (job, tick) lets exactly one replica win it. Manual runs have no tick.
CREATE TABLE job_runs (
    id          TEXT PRIMARY KEY,
    job         TEXT NOT NULL,
    tick        TEXT,
    trigger     TEXT NOT NULL,
    runner      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    outcome     TEXT NOT NULL,
    message     TEXT,
    UNIQUE (job, tick)
);
CREATE INDEX job_runs_by_job ON job_runs (job, started_at);

-- E-mails queued in the transaction of the change that caused them, sent later
-- by the sender. A sender claims a message by setting `claimed_by` and a lease
-- (`claimed_until`); a message whose lease ran out is claimable again.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    created_at      TEXT NOT NULL,
    recipients      TEXT NOT NULL,
    template        TEXT NOT NULL,
    context         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    sent_at         TEXT,
    claimed_by      TEXT,
    claimed_until   TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_by_status ON outbox (status, id);
