-- A commune joins an EPCI or syndicat mixte with its consent: the group invites,
-- the commune's collectivité accepts (or either side declines).
CREATE TABLE membership_invitations (
    id            TEXT PRIMARY KEY,
    group_id      TEXT NOT NULL REFERENCES orgs (id),
    commune_id    TEXT NOT NULL REFERENCES orgs (id),
    ent_delegated BIGINT NOT NULL DEFAULT 0,
    -- pending, accepted, declined
    status        TEXT NOT NULL DEFAULT 'pending',
    invited_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    answered_by   TEXT,
    answered_at   TEXT
);
CREATE INDEX membership_invitations_by_group ON membership_invitations (group_id, created_at);
CREATE INDEX membership_invitations_by_commune ON membership_invitations (commune_id, created_at);
