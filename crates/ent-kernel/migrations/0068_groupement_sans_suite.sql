-- The latest declaration « sans suite » of a groupement's consultation (articles R. 2185-1 and
-- R. 2185-2 du code de la commande publique), as JSON: its motif and justification, when and by
-- whom it was declared, and the launch and offers deadline of the consultation it ended (the
-- groupement's own are cleared, so that a relaunch sets new ones). NULL: never declared.
ALTER TABLE groupements ADD COLUMN sans_suite TEXT;
