-- Edition 3 of a convention's text (`conventions::document`): an avenant's consolidated annex is
-- the convention as amended, under its own reference and dates (« telle que modifiée par
-- l'avenant n° N »), no longer dated from the avenant; an amount of the « Caractéristiques »
-- reads in euros, no longer in cents. A convention submitted for signature keeps the edition
-- its signatures bind (1 or 2); a draft, never frozen or sent back to draft (its signatures
-- voided), is rendered again at its next submission: it takes edition 3, as 0059 moved drafts
-- to edition 2.
UPDATE conventions SET document_edition = 3 WHERE status = 'draft';
