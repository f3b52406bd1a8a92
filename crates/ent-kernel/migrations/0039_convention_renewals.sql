-- Tacit renewal of conventions whose model is `renewable`: a party's opposition (« non-
-- reconduction ») recorded before the notice deadline, on the convention's row (who, when,
-- for which party, why), and every renewal the daily job made (the term it passed, the new end).
ALTER TABLE conventions ADD COLUMN non_renewal_at TEXT;
ALTER TABLE conventions ADD COLUMN non_renewal_by TEXT;
ALTER TABLE conventions ADD COLUMN non_renewal_org TEXT;
ALTER TABLE conventions ADD COLUMN non_renewal_reason TEXT;
CREATE TABLE convention_renewals (
    convention_id TEXT NOT NULL REFERENCES conventions(id),
    previous_end TEXT NOT NULL,
    new_end TEXT NOT NULL,
    renewed_at TEXT NOT NULL,
    PRIMARY KEY (convention_id, previous_end)
);
