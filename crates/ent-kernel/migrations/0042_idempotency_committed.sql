-- A request run under an Idempotency-Key (or a console form token) marks its key inside each
-- of its write transactions (kernel store::idempotency): committed = 1 exactly when one of them
-- committed. A request that then fails keeps such a key instead of freeing it for a second run.
ALTER TABLE idempotency_keys ADD COLUMN committed BIGINT NOT NULL DEFAULT 0;
