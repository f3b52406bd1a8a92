-- Annuaire imports under way: one row per académie an import writes in (`*` for an
-- administrator's, which may write in every académie). A second import touching the same
-- académie is refused while the row's lease runs and its process lives; the import renews the
-- lease as it goes and deletes its rows at its end. A crashed import's rows are taken over once
-- its lease ran out, or at once from the same host when its process (`host:pid`) is gone.
CREATE TABLE import_locks (
    academie_code TEXT PRIMARY KEY,
    run_id        TEXT NOT NULL,
    holder        TEXT NOT NULL,
    process       TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX import_locks_by_run ON import_locks (run_id);
