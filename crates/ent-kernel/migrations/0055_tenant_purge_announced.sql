-- When the `tenants-purge` job announced an archived tenant's purge (event and e-mail
-- `purge_planned`, `provisioning::purge::PURGE_NOTICE_DAYS` before its date): set once, by a
-- guarded `UPDATE … WHERE purge_announced_at IS NULL`, so that two replicas announce it once.
-- NULL: not announced yet (and for tenants purged before this column).
ALTER TABLE tenants ADD COLUMN purge_announced_at TEXT;
-- The people a notice goes to by role: `tenants::notices` (a role at an organisation, every
-- `dan` binding), `conventions::users_with_role`. Before, each read every binding.
CREATE INDEX role_bindings_role_org ON role_bindings (role, org_id);
