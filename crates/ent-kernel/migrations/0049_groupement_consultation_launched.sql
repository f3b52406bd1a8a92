-- The instant a groupement's consultation was launched (it entered `consultation`), which bounds
-- the notification of its contract; NULL: not launched. Groupements launched before this
-- migration take it from their audit record of that transition (the latest, should there be
-- several).
ALTER TABLE groupements ADD COLUMN consultation_launched_at TEXT;
UPDATE groupements SET consultation_launched_at = (
    SELECT MAX(a.at) FROM audit_log a
    WHERE a.target_kind = 'groupement' AND a.target_id = groupements.id
      AND a.action = 'groupements.transition' AND a.summary LIKE '%"to":"consultation"%'
);
