# The materialization benchmark's source file, shared by run and queries.
# Sourced; needs $SQL (quiver-sql). See run's header for the shape.
T0="2026-01-01 00:00:00"

# make_source ROWS FILE
make_source() {
  local rows="$1" file="$2" entities=$(( $1 / 4 ))
  "$SQL" -c "COPY (SELECT
      CAST(hash(i) % $entities AS BIGINT) AS entity_id,
      TIMESTAMP '$T0' + to_seconds(i) AS event_timestamp,
      TIMESTAMP '$T0' + to_seconds(i + 5) AS created,
      CAST(i AS BIGINT) AS f_i64_a,
      CASE WHEN i % 37 = 0 THEN NULL ELSE CAST(hash(i + 1) % 1000000 AS BIGINT) END AS f_i64_b,
      CAST(i AS DOUBLE) / 7 AS f_f64_a,
      CASE WHEN i % 41 = 0 THEN NULL ELSE CAST(hash(i + 2) % 100000 AS DOUBLE) / 1000 END AS f_f64_b,
      CAST(i % 1000 AS FLOAT) / 8 AS f_f32_a,
      CAST(hash(i + 3) % 1000 AS FLOAT) / 3 AS f_f32_b,
      CASE WHEN i % 43 = 0 THEN NULL ELSE substr(md5(CAST(i AS VARCHAR)), 1, 16) END AS f_str,
      CAST(i % 100000 AS INTEGER) AS f_i32
    FROM range($rows) t(i)) TO '$file' (FORMAT parquet, ROW_GROUP_SIZE 100000)" >/dev/null
}

