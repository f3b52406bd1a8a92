-- Edition 11 of a convention's text: the bipartite's article 4 states, in the words of the
-- tripartite's article 5, the académie's share within its annual ceiling and the proration of
-- that ceiling to the cent below (`conventions::document::BIPARTITE_ROUNDING_EDITION`); the art. 28
-- annex names its bouquets as a French list, each once (`BOUQUET_LIST_EDITION`); an avenant states
-- a changed ceiling in letters and figures, toutes taxes comprises (`AVENANT_CEILING_EDITION`); a
-- « Vu » cites an act of délégation after its party (`DELEGATION_VU_EDITION`); the bipartite counts
-- its écoles in letters (`SCHOOLS_IN_WORDS_EDITION`). Edition 10 shipped without these: a
-- convention submitted for signature keeps the edition its signatures bind; a draft takes
-- edition 11, as 0071 moved drafts to edition 10.
UPDATE conventions SET document_edition = 11 WHERE status = 'draft';
