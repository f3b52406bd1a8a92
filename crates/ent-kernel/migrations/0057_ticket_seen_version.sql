-- The ticket as its requester sees it: its version (their `ETag`) and the date it last changed
-- for them. They move only when something the requester sees changes (a public message, the
-- status, the qualification, the due date of their first response); an escalation, a return or
-- an assignment moves `version` (the support's `If-Match`) alone.
ALTER TABLE support_tickets ADD COLUMN seen_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE support_tickets ADD COLUMN seen_at TEXT;
UPDATE support_tickets SET seen_version = version, seen_at = updated_at;
