-- A document version of a groupement belongs to the consultation it was generated for: once that
-- consultation is declared sans suite, `abandoned_at` is the declaration's moment (RFC 3339),
-- the version is shown as « consultation déclarée sans suite le … » and no longer offered as a
-- current piece; the relaunched consultation has its own versions. Versions generated before
-- this migration take the first declaration sans suite recorded after them in the audit log.
ALTER TABLE groupement_documents ADD COLUMN abandoned_at TEXT;
UPDATE groupement_documents SET abandoned_at = (
    SELECT MIN(a.at) FROM audit_log a
    WHERE a.action = 'groupements.sans_suite' AND a.target_kind = 'groupement'
      AND a.target_id = groupement_documents.groupement_id AND a.at >= groupement_documents.created_at
);
