-- Edition 9 of a convention's text (`conventions::document::PRORATED_CEILING_EDITION`; domain
-- review 40): the « Caractéristiques » state the académie's annual ceiling as art. 4 does, in
-- letters and figures, « toutes taxes comprises », and for a first or last school year the
-- convention does not cover in full the ceiling of that year (one twelfth a month in force on its
-- 15th). Edition 8 shipped without these: a convention submitted for signature keeps the edition
-- its signatures bind; a draft takes edition 9, as 0069 moved drafts to edition 8.
UPDATE conventions SET document_edition = 9 WHERE status = 'draft';
