-- Reliability: per-ticket event sequence under a row lock, one live signature or
-- visa per party and step, and a heartbeat row for the readiness write check.

ALTER TABLE support_tickets ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
UPDATE support_tickets SET last_seq =
    (SELECT COALESCE(MAX(e.seq), 0) FROM support_events e WHERE e.ticket_id = support_tickets.id);

-- Duplicates left by the race this index forbids: keep the earliest, void the others.
UPDATE convention_steps SET voided_at = at, void_reason = 'doublon concurrent annulé'
WHERE voided_at IS NULL AND EXISTS (
    SELECT 1 FROM convention_steps o
    WHERE o.convention_id = convention_steps.convention_id AND o.kind = convention_steps.kind
      AND o.step_key = convention_steps.step_key AND o.org_id = convention_steps.org_id
      AND o.voided_at IS NULL
      AND (o.at < convention_steps.at OR (o.at = convention_steps.at AND o.id < convention_steps.id)));
CREATE UNIQUE INDEX convention_steps_one_live
    ON convention_steps (convention_id, kind, step_key, org_id) WHERE voided_at IS NULL;

CREATE TABLE store_heartbeat (
    id BIGINT PRIMARY KEY,
    at TEXT NOT NULL
);
