-- Users, their role bindings (role at an organisation), API tokens.
CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    email        TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    org_id       TEXT REFERENCES orgs (id),
    active       BIGINT NOT NULL DEFAULT 1,
    version      BIGINT NOT NULL DEFAULT 1,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- `org_id` is NULL only for the platform-wide `admin` role.
CREATE TABLE role_bindings (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id),
    role       TEXT NOT NULL,
    org_id     TEXT REFERENCES orgs (id),
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX role_bindings_unique ON role_bindings (user_id, role, COALESCE(org_id, ''));

-- Only the SHA-256 of a token is stored; `prefix` is shown to recognise it.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

-- Append-only audit chain: each record hashes its content and the previous hash.
CREATE TABLE audit_log (
    seq          BIGINT PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_kind  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    scope_org_id TEXT,
    summary      TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX audit_by_target ON audit_log (target_kind, target_id);
CREATE INDEX audit_by_actor ON audit_log (actor);
CREATE INDEX audit_by_at ON audit_log (at);

-- Replay of POST creations sent with an Idempotency-Key.
CREATE TABLE idempotency_keys (
    actor        TEXT NOT NULL,
    idem_key     TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL,
    response     TEXT,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (actor, idem_key)
);
