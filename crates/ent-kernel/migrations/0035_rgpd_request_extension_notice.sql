-- The day a data subject was told that the answer to their request is extended by two
-- months, with its reasons (GDPR Art. 12(3): within one month of receipt). Extensions
-- recorded before keep it empty.
ALTER TABLE rgpd_requests ADD COLUMN extension_notified_on TEXT;
