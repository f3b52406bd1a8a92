-- OpenID Connect sign-in in the console.

-- The pending login between the redirect to the provider and its callback (a
-- pre-session): the SHA-256 of its cookie's opaque id, the serialised PendingLogin
-- (state, nonce, PKCE verifier, page asked), single-use, expired after ten minutes.
CREATE TABLE console_oidc_pending (
    id_hash    TEXT PRIMARY KEY,
    pending    TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- The provider's ID token of a session opened through it: the `id_token_hint` of the
-- sign-out at the provider (end_session_endpoint). Deleted at sign-out.
CREATE TABLE console_oidc_sessions (
    session_hash TEXT PRIMARY KEY REFERENCES console_sessions (id_hash),
    id_token     TEXT NOT NULL
);
