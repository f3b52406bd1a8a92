-- The processor contracts a source recorded (an award's, a contract's sub-processing): which
-- market binds an ENT (`contracts::binding_market`, read at each tenant creation and for each
-- draft convention) and the hébergeur declared under it are found through their source, never
-- by reading the whole table.
CREATE INDEX processor_contracts_by_source ON processor_contracts (source_kind, source_id);
