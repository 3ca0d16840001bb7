// quiverctl backup create / list, restore and verify against real clusters:
// a 3-node cluster (R=2) is backed up and restored onto a 2-node cluster of
// another partition count; verify's counts are checked against DuckDB's own
// answer (latest row per user, TTL applied), and verify must catch missing,
// stale and differing rows.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "harness.h"

namespace quiver::testing {
namespace {
namespace fs = std::filesystem;

constexpr int kUsers = 2000;
// The `recent` view's TTL: 1000.5 hours. User k's latest row is k hours old,
// so users 0..1000 are live and the others expired, with half an hour to
// spare either way while the test runs.
constexpr int64_t kTtlSeconds = 1000 * 3600 + 1800;

// "view=V ... key=N ...": the number after `key=` on the line of view V.
int64_t Field(const std::string& text, const std::string& view, const std::string& key) {
  const size_t line = text.find("view=" + view + " ");
  if (line == std::string::npos) return -1;
  const size_t end = text.find('\n', line);
  const std::string l = text.substr(line, end - line);
  const size_t at = l.find(" " + key + "=");
  if (at == std::string::npos) return -1;
  return std::stoll(l.substr(at + key.size() + 2));
}

class BackupTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto c = LocalCluster::Up(3, 2, 256);
    ASSERT_TRUE(c.ok()) << c.status();
    source_ = c->release();
    // Ten rows per user; user k's latest is k hours before now; score is
    // null for every seventh user's latest row.
    auto repo = RepoWithUsersParquet(absl::StrCat(
        "SELECT 'u' || (i % ", kUsers, ") AS user_id, "
        "date_trunc('second', now()::TIMESTAMP) - to_hours((i % ", kUsers, ")::BIGINT) "
        "  - to_days((i // ", kUsers, ")::BIGINT) AS ts, "
        "TIMESTAMP '2026-01-01' AS created, i::BIGINT AS clicks, "
        "CASE WHEN i < ", kUsers, " AND i % 7 = 0 THEN NULL ELSE i * 0.25 END::DOUBLE AS score, "
        "'l' || i AS label FROM range(", kUsers * 10, ") t(i)"));
    ASSERT_TRUE(repo.ok()) << repo.status();
    repo_ = repo->release();
    std::ofstream(repo_->File("repo.yaml"))
        << "project: backup\n"
           "entities:\n  - {name: user, join_key: user_id, value_type: STRING}\n"
           "sources:\n  - {name: users, path: data/users.parquet, timestamp_field: ts, "
           "created_timestamp_column: created}\n"
           "feature_views:\n"
           "  - name: user_stats\n    entities: [user]\n    ttl: 0\n    source: users\n"
           "    schema:\n      - {name: clicks, type: INT64}\n      - {name: score, type: DOUBLE}\n"
           "      - {name: label, type: STRING}\n"
           "  - name: recent\n    entities: [user]\n    ttl: " << kTtlSeconds << "s\n"
           "    source: users\n    schema:\n      - {name: clicks, type: INT64}\n";
    auto apply = source_->Ctl({"apply", repo_->path()});
    ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
    auto mat = source_->Ctl({"materialize", "2020-01-01", "2030-01-01"});
    ASSERT_EQ(mat.exit_code, 0) << mat.out << mat.err;
  }
  static void TearDownTestSuite() {
    delete source_;
    delete repo_;
  }

  // DuckDB's own count of users whose latest row is within the TTL.
  static int64_t LiveUsers() {
    auto t = DuckQuery(absl::StrCat(
        "SELECT count(*) FROM (SELECT user_id, max(ts) AS ts FROM read_parquet('",
        repo_->File("data/users.parquet"), "') GROUP BY user_id) WHERE ts + to_seconds(",
        kTtlSeconds, ") >= now()::TIMESTAMP"));
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? std::stoll((*t)[0][0].text) : -1;
  }

  static void ExpectVerifyAgrees(const LocalCluster& cluster) {
    auto v = cluster.Ctl({"verify"});
    ASSERT_EQ(v.exit_code, 0) << v.out << v.err;
    const int64_t live = LiveUsers();
    ASSERT_GT(live, 900);
    ASSERT_LT(live, kUsers);
    EXPECT_EQ(Field(v.out, "user_stats", "expected"), kUsers) << v.out;
    EXPECT_EQ(Field(v.out, "user_stats", "matched"), kUsers) << v.out;
    EXPECT_EQ(Field(v.out, "recent", "matched"), live) << v.out;
    EXPECT_EQ(Field(v.out, "recent", "expired"), kUsers - live) << v.out;
    EXPECT_EQ(Field(v.out, "user_stats", "mismatches"), 0) << v.out;
    EXPECT_EQ(Field(v.out, "recent", "mismatches"), 0) << v.out;
  }

  static LocalCluster* source_;
  static TempDir* repo_;
};

LocalCluster* BackupTest::source_ = nullptr;
TempDir* BackupTest::repo_ = nullptr;

TEST_F(BackupTest, ARestoreOntoAnotherShapeHoldsEveryRowAndVerifyAgrees) {
  ExpectVerifyAgrees(*source_);
  TempDir backups;
  auto b = source_->Ctl({"backup", "create", "--dest", backups.path()});
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  EXPECT_NE(b.out.find("view user_stats: 2000 rows"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("view recent: 2000 rows"), std::string::npos) << b.out;
  auto list = source_->Ctl({"backup", "list", "--dest", backups.path()});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("4000"), std::string::npos) << list.out;  // rows over both views

  auto c = LocalCluster::Up(2, 2, 64);
  ASSERT_TRUE(c.ok()) << c.status();
  std::unique_ptr<LocalCluster> target = *std::move(c);
  auto r = target->Ctl({"restore", "--from", backups.path()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("view user_stats: 2000 rows restored"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("MISMATCH"), std::string::npos) << r.out;
  ExpectVerifyAgrees(*target);

  // A cluster that already has a registry is never restored into.
  auto again = target->Ctl({"restore", "--from", backups.path()});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("fresh cluster"), std::string::npos) << again.err;
  // A damaged manifest is refused before anything is written.
  fs::path manifest;
  for (const auto& e : fs::recursive_directory_iterator(backups.path())) {
    if (e.path().filename() == "manifest.json") manifest = e.path();
  }
  ASSERT_FALSE(manifest.empty());
  fs::resize_file(manifest, fs::file_size(manifest) / 2);
  auto bad = target->Ctl({"restore", "--from", backups.path()});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("not a valid manifest"), std::string::npos) << bad.err;
  auto none = target->Ctl({"restore", "--from", repo_->path()});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("no backup in"), std::string::npos) << none.err;
}

TEST_F(BackupTest, VerifyCountsMissingStaleAndDifferingRows) {
  // The offline store moves on without a new materialization: a new user
  // (missing online) and a newer row for u1 (stale online).
  const std::string file = repo_->File("data/users.parquet");
  auto grown = DuckQuery(absl::StrCat(
      "COPY (SELECT * FROM read_parquet('", file, "') UNION ALL "
      "SELECT 'new-user', date_trunc('second', now()::TIMESTAMP), TIMESTAMP '2026-01-01', 1::BIGINT, 1.0::DOUBLE, 'n' "
      "UNION ALL SELECT 'u1', date_trunc('second', now()::TIMESTAMP), TIMESTAMP '2026-01-01', 2::BIGINT, 2.0::DOUBLE, 'm') "
      "TO '", file, ".new' (FORMAT PARQUET)"));
  ASSERT_TRUE(grown.ok()) << grown.status();
  fs::rename(file + ".new", file);
  // u2's row pushed with its offline event time but a later created time:
  // the online store keeps it (last writer wins), with other values.
  auto ts = DuckQuery(absl::StrCat("SELECT epoch_us(max(ts)) FROM read_parquet('", file,
                                   "') WHERE user_id = 'u2'"));
  ASSERT_TRUE(ts.ok()) << ts.status();
  const std::string push = repo_->File("u2.csv");
  std::ofstream(push) << "user_id,ts,created,clicks,score,label\nu2," << (*ts)[0][0].text
                      << ",1800000000000000,-5,0.5,pushed\n";
  auto p = source_->Ctl({"push", "user_stats", push});
  ASSERT_EQ(p.exit_code, 0) << p.out << p.err;

  auto v = source_->Ctl({"verify", "--views", "user_stats"});
  EXPECT_EQ(v.exit_code, 1) << v.out << v.err;
  EXPECT_EQ(Field(v.out, "user_stats", "expected"), kUsers + 1) << v.out;
  EXPECT_EQ(Field(v.out, "user_stats", "missing"), 1) << v.out;
  EXPECT_EQ(Field(v.out, "user_stats", "stale"), 1) << v.out;
  EXPECT_EQ(Field(v.out, "user_stats", "differing"), 1) << v.out;
  EXPECT_EQ(Field(v.out, "user_stats", "matched"), kUsers - 2) << v.out;
  EXPECT_EQ(Field(v.out, "user_stats", "mismatches"), 3) << v.out;
  EXPECT_NE(v.err.find("differ from the offline store"), std::string::npos) << v.err;
  auto unknown = source_->Ctl({"verify", "--views", "nope"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.err.find("unknown feature view"), std::string::npos) << unknown.err;
}

}  // namespace
}  // namespace quiver::testing
