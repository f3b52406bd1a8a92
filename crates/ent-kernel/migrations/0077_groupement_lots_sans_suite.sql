-- The lots of a groupement declared sans suite (article R. 2185-1 du code de la commande publique:
-- a procedure, or one of its lots, may be declared sans suite) while its consultation runs: a JSON
-- array of the declarations (lot, motif, justification, moment), NULL when none. The other lots
-- are awarded, each its own accord-cadre; a consultation declared sans suite as a whole clears it.
ALTER TABLE groupements ADD COLUMN lots_sans_suite TEXT;
