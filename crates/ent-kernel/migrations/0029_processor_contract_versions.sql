-- Processor contracts are edited in the console (dates, Art. 28 flag, title): each
-- change is checked against the version the form was shown at, as the other edits are.
ALTER TABLE processor_contracts ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
