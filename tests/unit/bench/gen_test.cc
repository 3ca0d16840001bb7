// quiver-bench-gen's dataset: shape, types, older rows, nulls, timestamps,
// determinism (checked with SQL over the written files), and that Quiver's own
// repository loader accepts the YAML and validates every source against the
// Parquet files.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/temp_dir.h"
#include "quiver/bench/gen/dataset.h"
#include "quiver/coordinator/repo.h"
#include "quiver/storage/offline_store.h"

namespace quiver::bench {
namespace {

constexpr int64_t kEntities = 2000;
constexpr int64_t kNowUs = 1'780'000'000'123'456;  // not a whole second on purpose
constexpr int64_t kNowS = kNowUs / 1'000'000;

class GenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    GenOptions o;
    o.entities = kEntities;
    o.out_dir = dir_->path() + "/a";
    o.seed = 11;
    o.now_us = kNowUs;
    auto r = GenerateDataset(o);
    ASSERT_TRUE(r.ok()) << r.status();
    result_ = *r;
  }
  static void TearDownTestSuite() { delete dir_; }

  void SetUp() override {
    auto s = storage::OfflineStore::Open(2);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  std::string Q(const std::string& sql) {
    auto r = store_->QueryScalar(sql);
    EXPECT_TRUE(r.ok()) << r.status() << "\n" << sql;
    return r.value_or("");
  }
  double Num(const std::string& sql) { return std::strtod(Q(sql).c_str(), nullptr); }
  static std::string File(int v) {
    return absl::StrCat("'", result_.dir, "/", ViewName(v), ".parquet'");
  }

  static testing::TempDir* dir_;
  static GenResult result_;
  std::unique_ptr<storage::OfflineStore> store_;
};

testing::TempDir* GenTest::dir_ = nullptr;
GenResult GenTest::result_;

TEST_F(GenTest, EveryEntityHasARowPerViewAndAboutTenPercentAnOlderOne) {
  int64_t total = 0;
  for (int v = 0; v < kViews; ++v) {
    const std::string f = File(v);
    EXPECT_EQ(Q(absl::StrCat("SELECT count(DISTINCT entity_id) || ',' || min(entity_id) || ',' || "
                             "max(entity_id) FROM ",
                             f)),
              absl::StrCat(kEntities, ",1,", kEntities));
    const double rows = Num(absl::StrCat("SELECT count(*) FROM ", f));
    EXPECT_GT(rows, kEntities * 1.05) << v;
    EXPECT_LT(rows, kEntities * 1.15) << v;
    EXPECT_LE(
        Num(absl::StrCat("SELECT max(c) FROM (SELECT count(*) c FROM ", f, " GROUP BY entity_id)")),
        2);
    // The older row is strictly older, so "latest" is unambiguous.
    EXPECT_EQ(Q(absl::StrCat("SELECT count(*) FROM (SELECT entity_id FROM ", f,
                             " GROUP BY entity_id HAVING count(*) = 2 AND ",
                             "count(DISTINCT event_timestamp) < 2)")),
              "0");
    total += static_cast<int64_t>(rows);
  }
  EXPECT_EQ(result_.rows, total);
}

TEST_F(GenTest, ColumnsHaveTheContractTypes) {
  const std::string scalar =
      "entity_id BIGINT,event_timestamp TIMESTAMP,created TIMESTAMP,f0 BIGINT,f1 DOUBLE,"
      "f2 FLOAT,f3 VARCHAR,f4 BIGINT,f5 DOUBLE,f6 FLOAT,f7 VARCHAR,f8 BIGINT,";
  for (int v : {0, 1, 24}) {
    EXPECT_EQ(Q(absl::StrCat("SELECT string_agg(column_name || ' ' || column_type, ',') FROM ",
                             "(DESCRIBE SELECT * FROM ", File(v), ")")),
              scalar + (v == 0 ? "f9 FLOAT[]" : "f9 DOUBLE"));
  }
  EXPECT_EQ(BenchViews()[0].features[9].type, ValueType::kFloatList);
  EXPECT_EQ(BenchViews()[7].features[3].type, ValueType::kString);
}

TEST_F(GenTest, TimestampsAreWholeSecondsWithinSevenDaysAndCreatedFollows) {
  for (int v : {0, 13}) {
    const std::string f = File(v);
    const std::string range = absl::StrCat(
        "SELECT bool_and(epoch_us(event_timestamp) % 1000000 = 0) AND "
        "bool_and(epoch_us(event_timestamp) < ",
        kNowS * 1'000'000,
        ") AND "
        "bool_and(epoch_us(event_timestamp) >= ",
        (kNowS - 7 * 86400) * 1'000'000,
        ") AND "
        "bool_and(epoch_us(created) - epoch_us(event_timestamp) BETWEEN 1000000 AND 5000000) "
        "FROM ",
        f);
    EXPECT_EQ(Q(range), "true") << v;
  }
}

TEST_F(GenTest, AboutFivePercentNullsAndFullEmbeddings) {
  for (int v : {0, 5}) {
    for (int c = 0; c < kFeaturesPerView; ++c) {
      const double nulls = Num(
          absl::StrCat("SELECT avg(CASE WHEN f", c, " IS NULL THEN 1 ELSE 0 END) FROM ", File(v)));
      EXPECT_GT(nulls, 0.03) << v << " f" << c;
      EXPECT_LT(nulls, 0.07) << v << " f" << c;
    }
  }
  EXPECT_EQ(Q(absl::StrCat("SELECT min(len(f9)) || ',' || max(len(f9)) || ',' || "
                           "bool_and(list_count(f9) = 32) FROM ",
                           File(0), " WHERE f9 IS NOT NULL")),
            "32,32,true");
  // Strings are ~16 characters; values vary.
  EXPECT_GE(Num(absl::StrCat("SELECT min(length(f3)) FROM ", File(2))), 12);
  EXPECT_EQ(Num(absl::StrCat("SELECT max(length(f3)) FROM ", File(2))), 16);
  EXPECT_GT(Num(absl::StrCat("SELECT count(DISTINCT f1) FROM ", File(2))), kEntities);
}

TEST_F(GenTest, SameSeedGivesTheSameRowsAndAnotherSeedOthers) {
  GenOptions o;
  o.entities = kEntities;
  o.out_dir = dir_->path() + "/b";
  o.seed = 11;
  o.now_us = kNowUs;
  o.parallel_views = 1;
  ASSERT_TRUE(GenerateDataset(o).ok());
  o.out_dir = dir_->path() + "/c";
  o.seed = 12;
  ASSERT_TRUE(GenerateDataset(o).ok());
  for (int v : {0, 24}) {
    const std::string a = File(v);
    const std::string b = absl::StrCat("'", dir_->path(), "/b/", ViewName(v), ".parquet'");
    const std::string c = absl::StrCat("'", dir_->path(), "/c/", ViewName(v), ".parquet'");
    EXPECT_EQ(Q(absl::StrCat("SELECT count(*) FROM (SELECT * FROM ", a,
                             " EXCEPT ALL SELECT * FROM ", b, ")")),
              "0");
    EXPECT_GT(Num(absl::StrCat("SELECT count(*) FROM (SELECT * FROM ", a,
                               " EXCEPT ALL SELECT * FROM ", c, ")")),
              kEntities);
  }
}

TEST_F(GenTest, RepositoryYamlLoadsAndMatchesTheFiles) {
  auto registry = coordinator::LoadRepository(result_.dir);
  ASSERT_TRUE(registry.ok()) << registry.status();
  EXPECT_EQ(registry->project(), "bench");
  ASSERT_EQ(registry->feature_views_size(), kViews);
  EXPECT_EQ(registry->feature_views(0).ttl_seconds(), 30 * 86400);
  EXPECT_EQ(registry->feature_views(0).features_size(), kFeaturesPerView);
  ASSERT_EQ(registry->feature_services_size(), 2);
  EXPECT_TRUE(coordinator::ValidateSources(*registry, *store_).ok());
}

TEST(GenOptionsTest, RejectsBadOptions) {
  GenOptions o;
  o.out_dir = "/tmp/unused";
  EXPECT_EQ(GenerateDataset(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.entities = 10;
  o.out_dir = "";
  EXPECT_EQ(GenerateDataset(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ServiceFeaturesTest, FiftyAndTwoHundredFifty) {
  EXPECT_EQ(ServiceFeatures(5).size(), 50u);
  EXPECT_EQ(ServiceFeatures(kViews).size(), 250u);
  EXPECT_EQ(ServiceFeatures(5).back(), std::make_pair(4, 9));
}

}  // namespace
}  // namespace quiver::bench
