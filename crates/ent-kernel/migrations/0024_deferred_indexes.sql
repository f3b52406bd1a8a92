-- Secondary indexes set aside by a bulk load into an empty table (the annuaire's first
-- import), rebuilt once its rows are in. A definition is recorded in the transaction that
-- drops its index and deleted in the one that builds it again, so a load interrupted in
-- between leaves what to rebuild (done by the next import and at start).
CREATE TABLE deferred_indexes (
    name        TEXT PRIMARY KEY,
    table_name  TEXT NOT NULL,
    definition  TEXT NOT NULL,
    deferred_at TEXT NOT NULL
);
