-- The "transformation" step of the flights feature repository, run by DuckDB
-- (examples/flights/prepare.sh): real flights of Jan-Jun 2001 from
-- vega-datasets, shifted by whole days so that the newest event falls on
-- today 00:00 UTC (so TTLs behave as in production), turned into two feature
-- tables written as Parquet, sorted by event time (row-group statistics then
-- let materialization prune by time window).
--
-- Variables: ${SRC} the flights-3m.parquet file, ${OUT} the output folder.
-- created = event time + 5 minutes: when the pipeline would have written it.

SET TimeZone = 'UTC';

CREATE TEMP TABLE shifted AS
SELECT date + to_days(CAST(date_diff('day',
           (SELECT max(date) FROM read_parquet('${SRC}'))::DATE, current_date) AS INTEGER)) AS ts,
       delay, distance, origin, destination
FROM read_parquet('${SRC}');

-- Airport-level rolling delay statistics, one row per (origin, minute).
COPY (
  WITH w AS (
    SELECT origin, ts,
           avg(delay)         OVER w1h  AS avg_delay_1h,
           count(*)           OVER w1h  AS flights_1h,
           stddev_samp(delay) OVER w1h  AS delay_stddev_1h,
           avg(delay)         OVER w24h AS avg_delay_24h,
           count(*)           OVER w24h AS flights_24h,
           max(delay)         OVER w24h AS max_delay_24h
    FROM shifted
    WINDOW w1h  AS (PARTITION BY origin ORDER BY ts RANGE BETWEEN INTERVAL 1 HOUR PRECEDING AND CURRENT ROW),
           w24h AS (PARTITION BY origin ORDER BY ts RANGE BETWEEN INTERVAL 24 HOURS PRECEDING AND CURRENT ROW)
  )
  SELECT origin,
         ts AS event_timestamp,
         ts + INTERVAL 5 MINUTE AS created,
         any_value(avg_delay_1h)::DOUBLE    AS avg_delay_1h,
         any_value(flights_1h)::BIGINT      AS flights_1h,
         any_value(delay_stddev_1h)::DOUBLE AS delay_stddev_1h,   -- null with one flight in the hour
         any_value(avg_delay_24h)::DOUBLE   AS avg_delay_24h,
         any_value(flights_24h)::BIGINT     AS flights_24h,
         any_value(max_delay_24h)::BIGINT   AS max_delay_24h,
         (any_value(avg_delay_1h) > 15)     AS delayed_1h
  FROM w
  GROUP BY origin, ts
  ORDER BY ts, origin
) TO '${OUT}/origin_delay_stats.parquet' (FORMAT PARQUET, ROW_GROUP_SIZE 250000);

-- Route-level features keyed by (origin, destination), one row per (route, minute).
COPY (
  WITH w AS (
    SELECT origin, destination, ts, delay, distance,
           avg(delay) OVER w7d AS avg_delay_7d,
           count(*)   OVER w7d AS flights_7d
    FROM shifted
    WINDOW w7d AS (PARTITION BY origin, destination ORDER BY ts
                   RANGE BETWEEN INTERVAL 7 DAYS PRECEDING AND CURRENT ROW)
  )
  SELECT origin, destination,
         ts AS event_timestamp,
         ts + INTERVAL 5 MINUTE AS created,
         max(delay)::BIGINT                AS delay,
         any_value(distance)::BIGINT       AS distance,
         any_value(avg_delay_7d)::FLOAT    AS avg_delay_7d,
         any_value(flights_7d)::INTEGER    AS flights_7d
  FROM w
  GROUP BY origin, destination, ts
  ORDER BY ts, origin, destination
) TO '${OUT}/route_stats.parquet' (FORMAT PARQUET, ROW_GROUP_SIZE 250000);

-- Every route, for lookups and benchmarks (origin,destination header).
COPY (SELECT DISTINCT origin, destination FROM shifted ORDER BY ALL)
  TO '${OUT}/routes.csv' (HEADER, DELIMITER ',');

-- Training entity rows for the delay model (quickstart's training-set step):
-- 20,000 flights sampled from the last 90 days, each stamped one minute
-- before its departure (the features a model would be served then: the
-- flight's own feature rows come later, so its delay cannot leak into them),
-- with the label: delayed more than 15 minutes.
COPY (
  SELECT * FROM (
    SELECT origin, destination, ts - INTERVAL 1 MINUTE AS event_timestamp, ts AS departure,
           (delay > 15) AS delayed
    FROM shifted
    WHERE ts >= (SELECT max(ts) FROM shifted) - INTERVAL 90 DAY)
  USING SAMPLE reservoir(20000 ROWS) REPEATABLE (42)  -- (samples the FROM: the subquery)
  ORDER BY departure, origin, destination
) TO '${OUT}/training_entities.parquet' (FORMAT PARQUET);

SELECT 'origin_delay_stats' AS feature_table, count(*) AS rows, min(event_timestamp) AS first_event,
       max(event_timestamp) AS last_event
FROM read_parquet('${OUT}/origin_delay_stats.parquet')
UNION ALL
SELECT 'route_stats', count(*), min(event_timestamp), max(event_timestamp)
FROM read_parquet('${OUT}/route_stats.parquet');
