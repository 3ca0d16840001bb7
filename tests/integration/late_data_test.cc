// Late events (issue 12): rows that reach the offline store after their
// event-time window was materialized. Feast's materialize-incremental reads
// only [last end, end) by event time and never sees them; Quiver's also takes
// every row created since the view's watermark (sources with a created
// timestamp column), or re-reads `lateness` before the last end.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "harness.h"

namespace quiver::testing {
namespace {

// clicks of users u0..u<n-1> as served now (-1: not PRESENT).
std::vector<int64_t> ServedClicks(const LocalCluster& cluster, int n) {
  auto client = cluster.Connect();
  EXPECT_TRUE(client.ok()) << client.status();
  if (!client.ok()) return {};
  client::OnlineRequest request;
  request.features = {"user_stats:clicks"};
  for (int i = 0; i < n; ++i) {
    request.entity_rows.push_back({{"user_id", Value::String(absl::StrCat("u", i))}});
  }
  auto response = (*client)->GetOnlineFeatures(request);
  EXPECT_TRUE(response.ok()) << response.status();
  std::vector<int64_t> out;
  if (!response.ok()) return out;
  for (const auto& row : response->rows) {
    out.push_back(row[0].status == client::FeatureStatus::kPresent
                      ? std::get<int64_t>(row[0].value.data)
                      : -1);
  }
  return out;
}

void WriteRepo(const TempDir& repo, bool created, const std::string& lateness) {
  std::ofstream(repo.File("repo.yaml"))
      << "project: late\n"
         "entities:\n  - {name: user, join_key: user_id, value_type: STRING}\n"
         "sources:\n  - {name: users, path: data, timestamp_field: ts"
      << (created ? ", created_timestamp_column: created" : "")
      << "}\n"
         "feature_views:\n  - name: user_stats\n    entities: [user]\n    ttl: 0\n"
      << (lateness.empty() ? "" : absl::StrCat("    lateness: ", lateness, "\n"))
      << "    source: users\n    schema:\n      - {name: clicks, type: INT64}\n";
}

TEST(LateData, IncrementalTakesRowsCreatedAfterTheWatermark) {
  constexpr int kUsers = 100;
  // u<i>: one row at 2026-03-01 00:00 + i s, created a minute later.
  auto repo = RepoWithUsersParquet(absl::StrCat(
      "SELECT 'u' || i AS user_id, TIMESTAMP '2026-03-01' + to_seconds(i) AS ts, "
      "TIMESTAMP '2026-03-01 00:01:00' + to_seconds(i) AS created, i::BIGINT AS clicks "
      "FROM range(", kUsers, ") t(i)"));
  ASSERT_TRUE(repo.ok()) << repo.status();
  WriteRepo(**repo, true, "");
  auto cluster = LocalCluster::Up(2, 2);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_EQ((*cluster)->Ctl({"apply", (*repo)->path()}).exit_code, 0);
  auto first = (*cluster)->Ctl({"materialize-incremental", "2026-03-02"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  std::vector<int64_t> served = ServedClicks(**cluster, kUsers);
  for (int i = 0; i < kUsers; ++i) ASSERT_EQ(served[static_cast<size_t>(i)], i);

  // Late rows, created on 2026-03-05 for events before the last end
  // (2026-03-02): u0..u49 newer events than stored (they must win), u50..u59
  // older events (they must lose to the stored rows).
  const std::string late = (*repo)->File("data/late.parquet");
  auto made = DuckQuery(absl::StrCat(
      "COPY (SELECT 'u' || i AS user_id, TIMESTAMP '2026-03-01 12:00:00' AS ts, "
      "TIMESTAMP '2026-03-05' AS created, (i + 500)::BIGINT AS clicks FROM range(50) t(i) "
      "UNION ALL SELECT 'u' || i, TIMESTAMP '2026-02-01', TIMESTAMP '2026-03-05', 9999 "
      "FROM range(50, 60) t(i)) TO '", late, "' (FORMAT PARQUET)"));
  ASSERT_TRUE(made.ok()) << made.status();
  // Event time alone (what Feast's incremental run reads) sees none of them.
  auto by_event = DuckQuery(absl::StrCat("SELECT count(*) FROM '", late,
                                         "' WHERE ts >= TIMESTAMP '2026-03-02' AND ts < TIMESTAMP '2026-03-03'"));
  ASSERT_TRUE(by_event.ok());
  EXPECT_EQ((*by_event)[0][0].text, "0");

  auto second = (*cluster)->Ctl({"materialize-incremental", "2026-03-03"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  served = ServedClicks(**cluster, kUsers);
  for (int i = 0; i < kUsers; ++i) {
    EXPECT_EQ(served[static_cast<size_t>(i)], i < 50 ? i + 500 : i) << "u" << i;
  }

  // Nothing new since: the next run changes nothing and still succeeds.
  auto third = (*cluster)->Ctl({"materialize-incremental", "2026-03-04"});
  ASSERT_EQ(third.exit_code, 0) << third.out << third.err;
  EXPECT_EQ(ServedClicks(**cluster, kUsers), served);
}

TEST(LateData, LatenessRereadsBeforeTheLastEndWithoutACreatedColumn) {
  constexpr int kUsers = 30;
  auto repo = RepoWithUsersParquet(absl::StrCat(
      "SELECT 'u' || i AS user_id, TIMESTAMP '2026-03-01' + to_seconds(i) AS ts, "
      "i::BIGINT AS clicks FROM range(", kUsers, ") t(i)"));
  ASSERT_TRUE(repo.ok()) << repo.status();
  WriteRepo(**repo, false, "1h");
  auto cluster = LocalCluster::Up(1, 1);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_EQ((*cluster)->Ctl({"apply", (*repo)->path()}).exit_code, 0);
  ASSERT_EQ((*cluster)->Ctl({"materialize-incremental", "2026-03-02"}).exit_code, 0);

  // Late rows: u0..u9 30 minutes before the last end (within the lateness),
  // u10..u19 two hours before it (beyond it: not read again, the bound).
  auto made = DuckQuery(absl::StrCat(
      "COPY (SELECT 'u' || i AS user_id, TIMESTAMP '2026-03-01 23:30:00' AS ts, "
      "(i + 500)::BIGINT AS clicks FROM range(10) t(i) "
      "UNION ALL SELECT 'u' || i, TIMESTAMP '2026-03-01 22:00:00', (i + 700)::BIGINT "
      "FROM range(10, 20) t(i)) TO '", (*repo)->File("data/late.parquet"), "' (FORMAT PARQUET)"));
  ASSERT_TRUE(made.ok()) << made.status();
  auto second = (*cluster)->Ctl({"materialize-incremental", "2026-03-03"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  const std::vector<int64_t> served = ServedClicks(**cluster, kUsers);
  for (int i = 0; i < kUsers; ++i) {
    EXPECT_EQ(served[static_cast<size_t>(i)], i < 10 ? i + 500 : i) << "u" << i;
  }
}

}  // namespace
}  // namespace quiver::testing
