-- The safeguard a transfer to a processor outside the EEA rests on (Art. 45 adequacy
-- decision, Art. 46(2)(c) standard contractual clauses, Art. 47 binding corporate rules),
-- recorded on the processor's RGPD profile with the reference it cites; empty when none.
ALTER TABLE rgpd_profiles ADD COLUMN transfer_safeguard TEXT NOT NULL DEFAULT '';
ALTER TABLE rgpd_profiles ADD COLUMN transfer_safeguard_reference TEXT NOT NULL DEFAULT '';
