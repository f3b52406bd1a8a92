-- Indexes the query-plan test (tests/integration/query_plans.rs) found missing on the API's
-- main reads at national scale (issue 19). Expand only: nothing dropped or rewritten.
-- The signed copies of a convention, read with each convention (a page of conventions reads
-- those of all its conventions at once).
CREATE INDEX convention_files_by_convention ON convention_files (convention_id, uploaded_at);
-- The audit log of an organisation's scope (auditeur, DPO), newest first.
CREATE INDEX audit_by_scope ON audit_log (scope_org_id, seq);
