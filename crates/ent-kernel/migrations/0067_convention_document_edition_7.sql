-- Edition 7 of a convention's text (`conventions::document::FIGURES_EDITION`): durations and
-- time limits in letters (« pour une durée de trente-six mois », « reçue au moins trois mois
-- avant son échéance »), counts with the French thousands separator (« 4 600 »), the académie's
-- money share of a bipartite stated with its base, annual ceiling and payment, the convention
-- constitutive's legal basis in its « Vu », its single member and its art. 11. Edition 6 shipped
-- without these: a convention submitted for signature keeps the edition its signatures bind (1
-- to 6); a draft takes edition 7, as 0065 moved drafts to edition 6.
UPDATE conventions SET document_edition = 7 WHERE status = 'draft';
-- Who notified a résiliation, for which party, and when it was recorded (RFC 3339): the
-- « Résiliation » block of the complete document and the console's history state them. A
-- résiliation recorded before has its day from the audit log.
ALTER TABLE conventions ADD COLUMN termination_notified_at TEXT;
ALTER TABLE conventions ADD COLUMN termination_notified_by TEXT;
ALTER TABLE conventions ADD COLUMN termination_notified_org TEXT;
UPDATE conventions SET termination_notified_at = (
    SELECT MIN(a.at) FROM audit_log a
    WHERE a.target_kind = 'convention' AND a.target_id = conventions.id AND a.action = 'conventions.terminate'
) WHERE termination_reason IS NOT NULL;
