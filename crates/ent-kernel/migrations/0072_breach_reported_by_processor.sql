-- A breach a processor records for the ENT it runs for a controller is notified to that
-- controller (art. 33.2 RGPD; the conventions' 48 hours) and written in the controller's own
-- log as an entry of its own (its reference in the controller's series, its CNIL decision the
-- controller's): `reported_by` is the processor's entry it came from, `reported_at` the moment
-- of the notification, from which the controller's 72 hours run. The processor's entry names
-- its controllers through the entries that point at it. Older entries were reported by nobody.
ALTER TABLE rgpd_breaches ADD COLUMN reported_by TEXT REFERENCES rgpd_breaches (id);
ALTER TABLE rgpd_breaches ADD COLUMN reported_at TEXT;
CREATE INDEX rgpd_breaches_by_reporter ON rgpd_breaches (reported_by);
