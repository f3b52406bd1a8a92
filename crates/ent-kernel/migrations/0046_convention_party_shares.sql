-- A party's own share of a cost line it holds with others of the same party (each member of a
-- groupement de commandes: its quote-part of the members' part), in hundredths of a percent;
-- NULL: the line's share as the model states it.
ALTER TABLE convention_parties ADD COLUMN share_bp BIGINT;
