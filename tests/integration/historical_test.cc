// quiverctl get-historical (issue 12): the training set against an
// independent DuckDB query written here in Feast's SQL-template form (a
// window over every candidate row, not the ASOF join the product runs), on
// the flights data and on a small data set of created-timestamp ties, exact
// ties and nulls; and online against offline at the end of a
// materialization.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "flights_util.h"
#include "harness.h"
#include "quiver/storage/training_set.h"

namespace quiver::testing {
namespace {

// The rows of `sql` whose first column is an id, as id -> row.
std::map<std::string, std::vector<Cell>> ById(const Table& table) {
  std::map<std::string, std::vector<Cell>> out;
  for (const auto& row : table) out[row[0].text] = row;
  return out;
}

std::string CellText(const Cell& c) { return c.is_null ? "NULL" : c.text; }

TEST(GetHistorical, FlightsTrainingSetEqualsDuckDbOnEveryRowAndFeature) {
  const std::string data = FlightsDataDir();
  auto cluster = LocalCluster::Up(1, 1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto apply = (*cluster)->Ctl({"apply", SourceDir() + "/examples/flights"});
  ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;

  // Entity rows, each of a kind (the `kind` column, carried through):
  //   at: a route row's own timestamp; ttl / ttl1: exactly the route view's
  //   TTL (30 days) after one, and one second more; otl / otl1: the same for
  //   the origin view (2 days), with an unknown destination; before: a
  //   second before the origin's first row; unknown: keys nobody has;
  //   nullkey: an empty origin. event_timestamp takes three spellings (no
  //   zone, Z, +02:00); ts_utc is the same instant for the expected query.
  TempDir dir;
  const std::string entities = dir.File("entities.csv");
  const std::string route = data + "/route_stats.parquet", origin = data + "/origin_delay_stats.parquet";
  auto made = DuckQuery(absl::StrCat(
      "COPY (WITH r AS (SELECT origin, destination, event_timestamp AS t FROM '", route,
      "' USING SAMPLE reservoir(600 ROWS) REPEATABLE (7)), "
      // The last row of a key: past its TTL nothing newer can match.
      // (USING SAMPLE samples the FROM, before GROUP BY: hence the subquery.)
      "rl AS (SELECT * FROM (SELECT origin, destination, max(event_timestamp) AS t FROM '", route,
      "' GROUP BY ALL) USING SAMPLE reservoir(600 ROWS) REPEATABLE (5)), "
      "ol AS (SELECT * FROM (SELECT origin, max(event_timestamp) AS t FROM '", origin,
      "' GROUP BY ALL) USING SAMPLE reservoir(300 ROWS) REPEATABLE (11)), "
      "rows AS ("
      " SELECT 'at' AS kind, origin, destination, t FROM r"
      " UNION ALL SELECT 'ttl', origin, destination, t + INTERVAL 30 DAY FROM rl"
      " UNION ALL SELECT 'ttl1', origin, destination, t + INTERVAL 30 DAY + INTERVAL 1 SECOND FROM rl"
      " UNION ALL SELECT 'otl', origin, 'ZZZ', t + INTERVAL 2 DAY FROM ol"
      " UNION ALL SELECT 'otl1', origin, 'ZZZ', t + INTERVAL 2 DAY + INTERVAL 1 SECOND FROM ol"
      " UNION ALL SELECT 'before', origin, 'ZZZ', min(event_timestamp) - INTERVAL 1 SECOND FROM '",
      origin, "' GROUP BY origin"
      " UNION ALL SELECT 'unknown', 'QQQ', 'QQQ', TIMESTAMP '2026-01-01'"
      " UNION ALL SELECT 'nullkey', NULL, 'SFO', TIMESTAMP '2026-01-01'), "
      "numbered AS (SELECT row_number() OVER (ORDER BY kind, origin, destination, t) AS id, * FROM rows) "
      "SELECT id, origin, destination, "
      " CASE id % 3 WHEN 0 THEN strftime(t, '%Y-%m-%d %H:%M:%S')"
      "  WHEN 1 THEN strftime(t, '%Y-%m-%dT%H:%M:%SZ')"
      "  ELSE strftime(t + INTERVAL 2 HOUR, '%Y-%m-%dT%H:%M:%S+02:00') END AS event_timestamp,"
      " strftime(t, '%Y-%m-%d %H:%M:%S') AS ts_utc, kind "
      // Written in reverse id order: the output must keep the input order.
      "FROM numbered ORDER BY id DESC) TO '", entities, "' (FORMAT CSV, HEADER)"));
  ASSERT_TRUE(made.ok()) << made.status();

  const std::string out = dir.File("training.parquet");
  auto got = (*cluster)->Ctl({"get-historical", "--feature-service", "delay_model_v1",
                              "--entities", entities, "--output", out});
  ASSERT_EQ(got.exit_code, 0) << got.out << got.err;

  // Order and count: the output's ids are the input's, in order.
  auto in_ids = DuckQuery(absl::StrCat("SELECT id FROM read_csv('", entities, "', all_varchar = true)"));
  auto out_ids = DuckQuery(absl::StrCat("SELECT id FROM read_parquet('", out, "')"));
  ASSERT_TRUE(in_ids.ok() && out_ids.ok());
  ASSERT_EQ(in_ids->size(), out_ids->size());
  for (size_t i = 0; i < in_ids->size(); ++i) {
    ASSERT_EQ((*in_ids)[i][0].text, (*out_ids)[i][0].text) << "row " << i;
  }

  // Feast's template: every candidate row of the view, then the latest per
  // entity row (event timestamp, then created timestamp).
  const std::string e = absl::StrCat(
      "(SELECT id::BIGINT AS id, origin, destination, ts_utc::TIMESTAMP AS ets FROM read_csv('",
      entities, "', all_varchar = true))");
  auto expected = DuckQuery(absl::StrCat(
      "WITH e AS ", e, ", "
      "rc AS (SELECT e.id, s.delay, s.distance, s.avg_delay_7d, s.flights_7d, row_number() OVER ("
      " PARTITION BY e.id ORDER BY s.event_timestamp DESC, s.created DESC) AS rn FROM e JOIN '", route,
      "' s ON s.origin = e.origin AND s.destination = e.destination AND s.event_timestamp <= e.ets"
      " AND s.event_timestamp >= e.ets - INTERVAL 30 DAY), "
      "oc AS (SELECT e.id, s.avg_delay_1h, s.flights_24h, row_number() OVER ("
      " PARTITION BY e.id ORDER BY s.event_timestamp DESC, s.created DESC) AS rn FROM e JOIN '", origin,
      "' s ON s.origin = e.origin AND s.event_timestamp <= e.ets"
      " AND s.event_timestamp >= e.ets - INTERVAL 2 DAY) "
      "SELECT e.id, oc.avg_delay_1h, oc.flights_24h, rc.delay, rc.distance, rc.avg_delay_7d,"
      " rc.flights_7d FROM e LEFT JOIN rc ON rc.id = e.id AND rc.rn = 1"
      " LEFT JOIN oc ON oc.id = e.id AND oc.rn = 1"));
  ASSERT_TRUE(expected.ok()) << expected.status();
  auto actual = DuckQuery(absl::StrCat(
      "SELECT id, avg_delay_1h, flights_24h, delay, distance, avg_delay_7d, flights_7d, kind FROM "
      "read_parquet('", out, "')"));
  ASSERT_TRUE(actual.ok()) << actual.status();
  const auto want = ById(*expected);
  // kind -> rows, rows with the route view's row (distance), with the origin
  // view's row (flights_24h); neither column is null in the data.
  struct Seen {
    int rows = 0, route = 0, origin = 0;
  };
  std::map<std::string, Seen> seen;
  int mismatches = 0;
  for (const auto& row : *actual) {
    auto it = want.find(row[0].text);
    ASSERT_NE(it, want.end()) << "id " << row[0].text;
    for (size_t c = 1; c <= 6; ++c) {
      if (CellText(row[c]) != CellText(it->second[c]) && ++mismatches <= 5) {
        ADD_FAILURE() << "id " << row[0].text << " (" << row[7].text << ") column " << c << ": got "
                      << CellText(row[c]) << ", DuckDB says " << CellText(it->second[c]);
      }
    }
    Seen& s = seen[row[7].text];
    ++s.rows;
    if (!row[4].is_null) ++s.route;
    if (!row[2].is_null) ++s.origin;
  }
  EXPECT_EQ(mismatches, 0);
  // The cases are not vacuous: rows at a feature row's time and exactly
  // TTL after it find it (inclusive bounds); the key-less rows find nothing.
  EXPECT_EQ(seen["at"].route, seen["at"].rows);
  EXPECT_EQ(seen["ttl"].route, seen["ttl"].rows);
  EXPECT_EQ(seen["otl"].origin, seen["otl"].rows);
  EXPECT_GT(seen["ttl"].rows, 0);
  EXPECT_GT(seen["otl"].rows, 0);
  EXPECT_EQ(seen["ttl1"].route, 0);
  EXPECT_EQ(seen["otl1"].origin, 0);
  EXPECT_EQ(seen["before"].origin, 0);
  EXPECT_EQ(seen["unknown"].route + seen["unknown"].origin, 0);
  EXPECT_EQ(seen["nullkey"].route + seen["nullkey"].origin, 0);

  // CSV to stdout: the same rows, the header first.
  auto csv = (*cluster)->Ctl({"get-historical", "--feature-service", "delay_model_v1",
                              "--entities", entities, "--full-feature-names"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_EQ(csv.out.substr(0, csv.out.find('\n')),
            "id,origin,destination,event_timestamp,ts_utc,kind,origin_delay_stats__avg_delay_1h,"
            "origin_delay_stats__flights_24h,route_stats__delay,route_stats__distance,"
            "route_stats__avg_delay_7d,route_stats__flights_7d");
  EXPECT_EQ(static_cast<size_t>(std::count(csv.out.begin(), csv.out.end(), '\n')),
            in_ids->size() + 1);
}

// Online equals offline at the end of a materialization, on a data set of
// the hard cases (200 users, 40 of each kind by user % 5):
//   0: two rows at one event time, the later-created one wins;
//   1: an exact tie (same event and created time, other values): whichever
//      the online store keeps, offline gives the same;
//   2: the latest row's features are null;
//   3: at one event time, a row without created timestamp and one with: the
//      one with wins;
//   4: only rows older than the TTL (1 day): OUTSIDE_MAX_AGE online, null
//      offline.
TEST(GetHistorical, OnlineEqualsOfflineAtTheEndOfAMaterialization) {
  constexpr int kUsers = 200;
  const int64_t now_s = NowMicros() / 1000000;
  auto repo = RepoWithUsersParquet(absl::StrCat(
      "WITH u AS (SELECT i, 'u' || i AS user_id, to_timestamp(", now_s,
      " - 3600 - i)::TIMESTAMP AS ts FROM range(", kUsers, ") t(i)) "
      "SELECT user_id, ts, ts + INTERVAL 1 MINUTE AS created, i::BIGINT AS clicks, 'a' AS note FROM u "
      " WHERE i % 5 = 0 "
      "UNION ALL SELECT user_id, ts, ts + INTERVAL 2 MINUTE, (i + 1000)::BIGINT, 'bb' FROM u WHERE i % 5 = 0 "
      "UNION ALL SELECT user_id, ts, ts, i::BIGINT, 'x' FROM u WHERE i % 5 = 1 "
      "UNION ALL SELECT user_id, ts, ts, (i + 2000)::BIGINT, 'yyyy' FROM u WHERE i % 5 = 1 "
      "UNION ALL SELECT user_id, ts - INTERVAL 1 HOUR, ts, i::BIGINT, 'old' FROM u WHERE i % 5 = 2 "
      "UNION ALL SELECT user_id, ts, ts, NULL, NULL FROM u WHERE i % 5 = 2 "
      "UNION ALL SELECT user_id, ts, NULL, i::BIGINT, 'none' FROM u WHERE i % 5 = 3 "
      "UNION ALL SELECT user_id, ts, ts, (i + 3000)::BIGINT, 'some' FROM u WHERE i % 5 = 3 "
      "UNION ALL SELECT user_id, ts - INTERVAL 3 DAY, ts, i::BIGINT, 'gone' FROM u WHERE i % 5 = 4"));
  ASSERT_TRUE(repo.ok()) << repo.status();
  std::ofstream((*repo)->File("repo.yaml"))
      << "project: historical\n"
         "entities:\n  - {name: user, join_key: user_id, value_type: STRING}\n"
         "sources:\n  - {name: users, path: data/users.parquet, timestamp_field: ts,"
         " created_timestamp_column: created}\n"
         "feature_views:\n  - name: user_stats\n    entities: [user]\n    ttl: 1d\n"
         "    source: users\n    schema:\n"
         "      - {name: clicks, type: INT64}\n      - {name: note, type: STRING}\n";
  auto cluster = LocalCluster::Up(2, 2);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto apply = (*cluster)->Ctl({"apply", (*repo)->path()});
  ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
  const std::string end = FormatTimestamp(now_s * 1000000);
  auto mat = (*cluster)->Ctl({"materialize", "2020-01-01", end});
  ASSERT_EQ(mat.exit_code, 0) << mat.out << mat.err;

  TempDir dir;
  {
    std::ofstream csv(dir.File("entities.csv"));
    csv << "user_id,event_timestamp\n";
    for (int i = 0; i < kUsers; ++i) csv << "u" << i << "," << end << "\n";
    csv << "nobody," << end << "\n";
  }
  auto client = (*cluster)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  client::OnlineRequest request;
  request.features = {"user_stats:clicks", "user_stats:note"};
  for (int i = 0; i < kUsers; ++i) request.entity_rows.push_back({{"user_id", Value::String(absl::StrCat("u", i))}});
  auto online = (*client)->GetOnlineFeatures(request);
  ASSERT_TRUE(online.ok()) << online.status();

  // Offline twice: quiverctl, and the in-process C++ API (training_set.h)
  // with the registry the client fetched.
  const std::string cli_out = dir.File("offline.parquet"), api_out = dir.File("api.parquet");
  auto got = (*cluster)->Ctl({"get-historical", "--features", "user_stats:clicks,user_stats:note",
                              "--entities", dir.File("entities.csv"), "--output", cli_out});
  ASSERT_EQ(got.exit_code, 0) << got.out << got.err;
  {
    auto store = storage::HistoricalStore::Open();
    ASSERT_TRUE(store.ok()) << store.status();
    storage::TrainingSetSpec spec;
    spec.features = {"user_stats:clicks", "user_stats:note"};
    spec.entities_path = dir.File("entities.csv");
    spec.output_path = api_out;
    auto stats = storage::GetHistoricalFeatures(**store, *(*client)->registry(), spec);
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->entity_rows, static_cast<uint64_t>(kUsers + 1));
    EXPECT_EQ(stats->features, 2u);
  }
  for (const std::string& out : {cli_out, api_out}) {
    SCOPED_TRACE(out);
    auto offline = DuckQuery(absl::StrCat("SELECT user_id, clicks, note FROM read_parquet('", out, "')"));
    ASSERT_TRUE(offline.ok()) << offline.status();
    ASSERT_EQ(offline->size(), static_cast<size_t>(kUsers + 1));

    int exact_ties_high = 0;
    for (int i = 0; i < kUsers; ++i) {
      const std::vector<Cell>& off = (*offline)[static_cast<size_t>(i)];
      ASSERT_EQ(off[0].text, absl::StrCat("u", i));
      const auto& on = online->rows[static_cast<size_t>(i)];
      SCOPED_TRACE(absl::StrCat("u", i));
      if (i % 5 == 4) {
        EXPECT_EQ(on[0].status, client::FeatureStatus::kOutsideMaxAge);
        EXPECT_TRUE(off[1].is_null && off[2].is_null);
        continue;
      }
      for (const client::FeatureValue& v : on) {
        ASSERT_TRUE(v.status == client::FeatureStatus::kPresent ||
                    v.status == client::FeatureStatus::kNullValue)
            << client::FeatureStatusName(v.status);
      }
      // Online and offline agree on every value (null included) ...
      EXPECT_EQ(CellText(off[1]),
                on[0].value.is_null() ? "NULL" : absl::StrCat(std::get<int64_t>(on[0].value.data)));
      EXPECT_EQ(CellText(off[2]),
                on[1].value.is_null() ? "NULL" : std::get<std::string>(on[1].value.data));
      // ... and both are what the data set says.
      switch (i % 5) {
        case 0: EXPECT_EQ(CellText(off[1]), absl::StrCat(i + 1000)); break;
        case 1:
          EXPECT_TRUE(off[1].text == absl::StrCat(i) || off[1].text == absl::StrCat(i + 2000));
          exact_ties_high += off[1].text == absl::StrCat(i + 2000);
          break;
        case 2: EXPECT_TRUE(off[1].is_null && off[2].is_null); break;
        case 3: EXPECT_EQ(CellText(off[1]), absl::StrCat(i + 3000)); break;
      }
    }
    // The tie rule is the row order, not the first row read: both outcomes
    // occur or one is always chosen, but online and offline agree (above).
    EXPECT_GE(exact_ties_high, 0);
    EXPECT_TRUE((*offline)[kUsers][1].is_null);  // nobody
  }
}

TEST(GetHistorical, BadRequestsFailClearly) {
  auto cluster = LocalCluster::Up(1, 1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_EQ((*cluster)->Ctl({"apply", SourceDir() + "/examples/flights"}).exit_code, 0);
  TempDir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.File(name), std::ios::binary) << text;
    return dir.File(name);
  };
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::string good = write("good.csv", "origin,destination,event_timestamp\nLAX,SFO,2026-01-01\n");
  const std::vector<Case> cases = {
      {{"--feature-service", "delay_model_v1", "--entities",
        write("nokey.csv", "origin,event_timestamp\nLAX,2026-01-01\n")},
       "has no column destination"},
      {{"--feature-service", "delay_model_v1", "--entities",
        write("nots.csv", "origin,destination\nLAX,SFO\n")},
       "has no column event_timestamp"},
      {{"--feature-service", "delay_model_v1", "--entities",
        write("badts.csv", "origin,destination,event_timestamp\nLAX,SFO,2026-01-01\nLAX,SFO,soon\n")},
       "row 2: event_timestamp 'soon'"},
      {{"--feature-service", "delay_model_v1", "--entities",
        write("garbage.bin", std::string("\x00\x01\x02\xff\xfe PAR1 \x00\x00", 14))},
       "garbage.bin"},
      {{"--feature-service", "delay_model_v1", "--entities",
        write("fake.parquet", "PAR1 not really a parquet file")},
       "is not a readable Parquet file"},
      {{"--features", "route_stats:nope", "--entities", good}, "nope"},
      {{"--feature-service", "no_such_service", "--entities", good}, "no_such_service"},
      {{"--feature-service", "delay_model_v1", "--entities", dir.File("missing.csv")}, "not found"},
      {{"--features", "route_stats:delay", "--entities",
        write("clash.csv", "origin,destination,event_timestamp,delay\nLAX,SFO,2026-01-01,1\n")},
       "output column delay appears twice"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"get-historical"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto r = (*cluster)->Ctl(args);
    EXPECT_NE(r.exit_code, 0) << c.message;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << "want '" << c.message << "' in: " << r.err;
    EXPECT_EQ(r.err.find("terminate"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace quiver::testing
