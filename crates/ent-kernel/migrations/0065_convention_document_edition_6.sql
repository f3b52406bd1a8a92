-- Edition 6 of a convention's text (`conventions::document::WORDING_EDITION`): small numbers
-- of the operative text in letters (« Fait en trois exemplaires originaux », « au moins une fois
-- par an », « un préavis de trois mois »), « l'académie de Créteil » in lower case, a
-- representative named without civility « agissant en vertu de » the act (no « habilité(e) »),
-- « ci-après dénommé « le membre du groupement » », and one parenthesis citing article 9 on a
-- sensitive datum of the art. 28 annex. Edition 5 shipped without these: a convention submitted
-- for signature keeps the edition its signatures bind (1 to 5); a draft takes edition 6, as 0064
-- moved drafts to edition 5.
UPDATE conventions SET document_edition = 6 WHERE status = 'draft';
