-- Files joined to a support ticket (on opening or with a reply), stored in the
-- database. `visibility` is the one of the message they came with: `public` (the
-- requester sees them), `support` (N1, N2, N3) or `internal` (N1, N2 only).
CREATE TABLE support_attachments (
    id                  TEXT PRIMARY KEY,
    ticket_id           TEXT NOT NULL REFERENCES support_tickets (id),
    visibility          TEXT NOT NULL,
    file_name           TEXT NOT NULL,
    content_type        TEXT NOT NULL,
    size                BIGINT NOT NULL,
    sha256              TEXT NOT NULL,
    content             BLOB NOT NULL,
    uploaded_by         TEXT NOT NULL,
    uploaded_by_user_id TEXT,
    created_at          TEXT NOT NULL
);
CREATE INDEX support_attachments_ticket ON support_attachments (ticket_id, created_at);

