-- Whose breach an entry of `rgpd_breaches` records, as decided when it was written: 'processor'
-- for a breach a processor notified to the controllers it named (art. 33.2 RGPD: their 48 hours,
-- the CNIL and the people theirs to tell), 'controller' for a breach of the organisation's own
-- processing (art. 33.1: the CNIL's 72 hours), a controller's entry a processor notified included.
-- Read instead of inferring it from the links between entries.
--
-- Back-fill: an entry some controller's entry points at (`reported_by`, migration 0072) was
-- notified by its processor: 'processor'. Every other entry stays 'controller', including those
-- processors recorded before they could name their controllers (session 41): nothing stored tells
-- them from a collectivité's breach of its own processing (the same organisation records both,
-- and neither names a controller), and reading them by a rule would move the deadline of entries
-- that are its own. A processor that names its controller on such an entry (PUT) notifies it, and
-- the entry becomes a processor's then.
ALTER TABLE rgpd_breaches ADD COLUMN reported_as TEXT NOT NULL DEFAULT 'controller';
UPDATE rgpd_breaches SET reported_as = 'processor'
    WHERE id IN (SELECT reported_by FROM rgpd_breaches WHERE reported_by IS NOT NULL);
