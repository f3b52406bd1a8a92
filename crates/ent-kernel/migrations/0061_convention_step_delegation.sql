-- A signature given by delegation (`conventions::delegation`): the person who signs is not the
-- representative the document names, and signs « pour le maire et par délégation » under an
-- act delegating the signature. The act (kind, number, date) and the signer's quality, as JSON;
-- NULL for a signature of the representative named, for a visa, and for every step recorded
-- before this column (read as such).
ALTER TABLE convention_steps ADD COLUMN delegation TEXT;
-- Edition 3 of the text (`avenant::AUTHORITY_EDITION`): « habilité » agrees with the
-- representative's civility, an avenant cites the délibération authorising it. A draft, never
-- frozen or sent back to draft (its signatures voided), takes it, as migration 0059 moved drafts
-- to edition 2; a text already submitted keeps its edition and its bytes.
UPDATE conventions SET document_edition = 3 WHERE status = 'draft' AND document_edition = 2;
