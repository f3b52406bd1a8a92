-- Accounts created by an invitation the invitee has not acted on yet (chosen a password
-- through a link, or signed in): only administrators see them until then, so that whoever
-- invited learns nothing about whether the address already had an account.
CREATE TABLE pending_invitees (
    user_id    TEXT PRIMARY KEY REFERENCES users (id),
    invited_at TEXT NOT NULL
);
