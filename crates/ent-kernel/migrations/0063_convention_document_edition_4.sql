-- Edition 4 of a convention's text (`conventions::document`): the text is set in French
-- typography (`documents::typography`: no-break spaces before « ; : ! ? » and inside « »,
-- in amounts, between a number and its unit, after « n° »), and a parameter's date or
-- percentage reads in French (« 1er septembre 2026 », « 12,5 % »), no longer as stored
-- (« 2026-09-01 », « 12.5 »). Edition 3 shipped without either: a convention submitted for
-- signature keeps the edition its signatures bind (1, 2 or 3), so that its text and the hash
-- re-derive; a draft, never frozen or sent back to draft (its signatures voided), is rendered
-- again at its next submission: it takes edition 4, as 0062 moved drafts to edition 3.
UPDATE conventions SET document_edition = 4 WHERE status = 'draft';
