-- The breach and request logs number their references from the counters (VIOL-2026-000001,
-- DEM-2026-000001), no longer from the last six hexadecimal digits of a random id, which
-- collided within a few thousand entries. Carry on above the old references written only
-- in digits (a suffix without a letter: LOWER and UPPER leave it as it is).
INSERT INTO counters (series, year, last)
SELECT 'VIOL', CAST(SUBSTR(reference, 6, 4) AS BIGINT), MAX(CAST(SUBSTR(reference, 11) AS BIGINT))
FROM rgpd_breaches
WHERE reference LIKE 'VIOL-____-______' AND LOWER(SUBSTR(reference, 11)) = UPPER(SUBSTR(reference, 11))
GROUP BY CAST(SUBSTR(reference, 6, 4) AS BIGINT);

INSERT INTO counters (series, year, last)
SELECT 'DEM', CAST(SUBSTR(reference, 5, 4) AS BIGINT), MAX(CAST(SUBSTR(reference, 10) AS BIGINT))
FROM rgpd_requests
WHERE reference LIKE 'DEM-____-______' AND LOWER(SUBSTR(reference, 10)) = UPPER(SUBSTR(reference, 10))
GROUP BY CAST(SUBSTR(reference, 5, 4) AS BIGINT);
