-- The edition of the text a convention's document is written in (`conventions::document`),
-- fixed when the convention is drafted, as its model's version is: 1, the text of every
-- convention drafted before edition 2, where an avenant restated the convention it amends
-- without citing it; 2, where an avenant cites it (reference, parties, dates), states its
-- object from the differences, the amended stipulations and its own date of effect. A
-- document submitted for signature is hashed, and its signatures bind that hash: a convention
-- already submitted keeps edition 1, so that its text (and the hash) reads the same. A draft,
-- never frozen or sent back to draft (its signatures voided), is rendered again at its next
-- submission: it takes edition 2.
ALTER TABLE conventions ADD COLUMN document_edition BIGINT NOT NULL DEFAULT 1;
UPDATE conventions SET document_edition = 2 WHERE status = 'draft';
