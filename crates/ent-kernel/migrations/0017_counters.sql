-- One table for every reference series (CONV-2026-000012, GC-2026-000001, ENT-2026-000042):
-- the next number is taken by an atomic upsert in the creating transaction, never by counting.
CREATE TABLE counters (
    series TEXT   NOT NULL,
    year   BIGINT NOT NULL,
    last   BIGINT NOT NULL,
    PRIMARY KEY (series, year)
);

-- Carry on from the references already given.
INSERT INTO counters (series, year, last)
SELECT 'CONV', CAST(SUBSTR(reference, 6, 4) AS BIGINT), MAX(CAST(SUBSTR(reference, 11) AS BIGINT))
FROM conventions WHERE reference LIKE 'CONV-____-%'
GROUP BY CAST(SUBSTR(reference, 6, 4) AS BIGINT);

INSERT INTO counters (series, year, last)
SELECT 'GC', CAST(SUBSTR(reference, 4, 4) AS BIGINT), MAX(CAST(SUBSTR(reference, 9) AS BIGINT))
FROM groupements WHERE reference LIKE 'GC-____-%'
GROUP BY CAST(SUBSTR(reference, 4, 4) AS BIGINT);

INSERT INTO counters (series, year, last) SELECT 'ENT', year, last FROM support_counters;

DROP TABLE support_counters;
