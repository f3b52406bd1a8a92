-- When the `tenants-purge` job announced an archived tenant's purge (event and e-mail
-- `purge_planned`, `provisioning::purge::PURGE_NOTICE_DAYS` before its date): set once, by a
-- guarded `UPDATE … WHERE purge_announced_at IS NULL`, so that two replicas announce it once.
-- NULL: not announced yet (and for tenants purged before this column).
ALTER TABLE tenants ADD COLUMN purge_announced_at TEXT;
-- When the purge of an archived tenant is due: set by its move to `archived` (archived_at +
-- `provisioning.retention_months` then), so that a later change of the retention neither
-- advances nor delays a purge already announced by the archiving mail. NULL for a tenant
-- archived before this column: the job falls back to archived_at + the current retention, and
-- stores the day it announces. The purge never runs before it, and at most
-- `provisioning::purge::HOLD_DAYS` after it.
ALTER TABLE tenants ADD COLUMN purge_due_at TEXT;
-- The people a notice goes to by role: `tenants::notices` (a role at an organisation, every
-- `dan` and `dpo` binding), `conventions::users_with_role`. Before, each read every binding.
CREATE INDEX role_bindings_role_org ON role_bindings (role, org_id);
