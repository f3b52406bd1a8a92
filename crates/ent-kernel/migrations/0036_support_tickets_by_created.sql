-- The support report's period (`/api/v1/support/report?month=` or `from`/`to`, `entctl support
-- report`) counts the tickets created in it: without an index on `created_at` every report read
-- the whole `support_tickets` table (query-plan test, tests/integration/query_plans.rs).
CREATE INDEX support_tickets_by_created ON support_tickets (created_at);
