-- Edition 8 of a convention's text (`conventions::document::CEILING_EDITION`,
-- `conventions::avenant::NEUTRAL_EFFECT_EDITION`; domain review 39, G1 to G3): an avenant cites
-- the convention it amends as « prenant effet le … », whatever the day; the académie's annual
-- ceiling of a bipartite in letters and figures, « toutes taxes comprises », prorated for an
-- incomplete school year, and a change of share or ceiling by avenant applied to the payments
-- made from its date of effect; a notice period in the « Caractéristiques » as « 3 mois ».
-- Edition 7 shipped without these: a convention submitted for signature keeps the edition its
-- signatures bind; a draft takes edition 8, as 0067 moved drafts to edition 7.
UPDATE conventions SET document_edition = 8 WHERE status = 'draft';
