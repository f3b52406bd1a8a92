-- The OpenID Connect identity (issuer, subject) an account was first signed in with: from
-- then on only that subject of that issuer opens it, whatever e-mail another one presents.
CREATE TABLE oidc_identities (
    issuer    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    user_id   TEXT NOT NULL REFERENCES users (id),
    linked_at TEXT NOT NULL,
    PRIMARY KEY (issuer, subject),
    UNIQUE (issuer, user_id)
);
