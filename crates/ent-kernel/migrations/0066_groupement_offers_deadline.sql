-- The date and time limit for receipt of offers of a groupement's consultation (article R. 2151-1
-- du code de la commande publique), set at its launch, as an RFC 3339 instant in UTC; NULL: not
-- launched, or launched before this migration (a legacy consultation: its award is checked
-- against the procedure's minimum delays alone, and says so).
ALTER TABLE groupements ADD COLUMN offers_deadline_at TEXT;
