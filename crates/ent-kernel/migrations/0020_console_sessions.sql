-- The web console: local passwords, server-side sessions and one-time links.

-- A user's local password (argon2id PHC string); none for users who sign in otherwise.
CREATE TABLE user_passwords (
    user_id    TEXT PRIMARY KEY REFERENCES users (id),
    hash       TEXT NOT NULL,
    changed_at TEXT NOT NULL
);

-- Console sessions: only the SHA-256 of the cookie's opaque id is stored, with the
-- session's CSRF token (synchronizer pattern).
CREATE TABLE console_sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    csrf_token   TEXT NOT NULL,
    client       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    revoked_at   TEXT
);
CREATE INDEX console_sessions_by_user ON console_sessions (user_id);

-- One-time links (password reset, first set-up): the SHA-256 of the link's secret,
-- valid until `expires_at`, spent once (`used_at`).
CREATE TABLE one_time_links (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    purpose    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
);
CREATE INDEX one_time_links_by_user ON one_time_links (user_id);
