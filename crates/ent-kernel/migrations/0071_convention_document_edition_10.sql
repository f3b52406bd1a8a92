-- Edition 10 of a convention's text (domain review 41, F2, F4, F9): an avenant that changes the
-- services of the art. 28 annex says so in its « Objet » and restates the annex's services, data
-- and persons (`conventions::avenant::ANNEX_CHANGES_EDITION`); article 5 of a tripartite states
-- the académie's money share with its base, its annual ceiling in letters and figures, its
-- proration by twelfths and its payment, and the cost annex calls it a financial participation
-- (`conventions::document::TRIPARTITE_CEILING_EDITION`); the art. 28 annex of the second degré
-- lists persons and data once and names the ENT it covers (`conventions::document::ANNEX_ONCE_EDITION`).
-- Edition 9 shipped without these: a convention submitted for signature keeps the edition its
-- signatures bind; a draft takes edition 10, as 0070 moved drafts to edition 9.
UPDATE conventions SET document_edition = 10 WHERE status = 'draft';
