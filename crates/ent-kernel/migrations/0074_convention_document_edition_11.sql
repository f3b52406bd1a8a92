-- Edition 11 of a convention's text: the bipartite's article 4 states, as the tripartite's
-- article 5 does from edition 10, the académie's share within the annual ceiling and that the
-- ceiling of a school year the convention does not cover in full is rounded to the cent below
-- (`conventions::document::BIPARTITE_ROUNDING_EDITION`). Edition 10 shipped without it: a
-- convention submitted for signature keeps the edition its signatures bind; a draft takes
-- edition 11, as 0071 moved drafts to edition 10.
UPDATE conventions SET document_edition = 11 WHERE status = 'draft';
