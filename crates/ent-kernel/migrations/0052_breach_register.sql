-- What Art. 33(3) and 34 ask a breach's record to say besides what 0010 kept: the categories
-- of people concerned, the risk assessed, the CNIL's notification number and the Art. 34(3)
-- exception under which the people were not told despite a high risk, with its
-- justification. Older entries read as not filled in.
ALTER TABLE rgpd_breaches ADD COLUMN people_categories TEXT NOT NULL DEFAULT '[]';
ALTER TABLE rgpd_breaches ADD COLUMN risk TEXT NOT NULL DEFAULT 'unassessed';
ALTER TABLE rgpd_breaches ADD COLUMN cnil_reference TEXT NOT NULL DEFAULT '';
ALTER TABLE rgpd_breaches ADD COLUMN people_exception TEXT NOT NULL DEFAULT 'none';
ALTER TABLE rgpd_breaches ADD COLUMN people_reason TEXT NOT NULL DEFAULT '';
