// On-demand features (issue 12): for 10,000 random rows (nulls, zeros,
// negative numbers, long strings, null request fields), the values the
// client computes online, the values get-historical computes offline, and
// the values DuckDB computes from the same expressions written in SQL here
// (x / 0 spelled out as null) are identical.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "harness.h"

namespace quiver::testing {
namespace {

constexpr int kUsers = 10000;

// Our expressions and the same in DuckDB's SQL over a, b, s (the source)
// and income (the request field).
struct Derived {
  std::string name, type, ours, sql;
};
const std::vector<Derived>& Features() {
  static const auto* kFeatures = new std::vector<Derived>{
      {"ratio", "DOUBLE", "a / b", "CASE WHEN b = 0 THEN NULL ELSE a / b END"},
      {"doubled", "INT64", "if(a > 0, a * 2, coalesce(a, -1))",
       "CASE WHEN a > 0 THEN a * 2 ELSE coalesce(a, -1) END"},
      {"label", "STRING", "concat(s, ':', a)", "concat(s, ':', a)"},
      {"rich", "BOOL", "b * income > 100 or s = ''", "b * income > 100 OR s = ''"},
      {"score", "DOUBLE", "round(sqrt(abs(b)) + income, 3)", "round(sqrt(abs(b)) + income, 3)"},
      {"chars", "INT64", "length(s)", "length(s)"},
  };
  return *kFeatures;
}

// The random source: one row per user, an hour old.
std::string SourceSelect(int64_t now_s) {
  return absl::StrCat(
      "SELECT 'u' || i AS user_id, to_timestamp(", now_s, " - 3600)::TIMESTAMP AS ts,"
      " CASE WHEN hash(i, 1) % 8 = 0 THEN NULL WHEN hash(i, 2) % 10 = 0 THEN 0"
      "  ELSE (hash(i, 3) % 2001)::BIGINT - 1000 END AS a,"
      " CASE WHEN hash(i, 4) % 8 = 0 THEN NULL WHEN hash(i, 5) % 10 = 0 THEN 0.0"
      "  ELSE ((hash(i, 6) % 2000001)::BIGINT - 1000000) / 997.0 END AS b,"
      " CASE WHEN hash(i, 7) % 8 = 0 THEN NULL WHEN hash(i, 8) % 10 = 0 THEN ''"
      "  ELSE repeat(chr(97 + (hash(i, 9) % 26)::INTEGER), (hash(i, 10) % 500)::INTEGER) END AS s"
      " FROM range(", kUsers, ") t(i)");
}

// The request field: null 1 in 8, else a number in [-50, 50).
std::string Income(int i) {
  const uint64_t h = static_cast<uint64_t>(i) * 2654435761u;
  if (h % 8 == 3) return "";
  return absl::StrCat(static_cast<double>(static_cast<int64_t>(h % 10000) - 5000) / 100.0);
}

std::string OnlineText(const Value& v) {
  if (v.is_null()) return "NULL";
  if (const auto* i = std::get_if<int64_t>(&v.data)) return absl::StrCat(*i);
  if (const auto* b = std::get_if<bool>(&v.data)) return *b ? "true" : "false";
  if (const auto* s = std::get_if<std::string>(&v.data)) return *s;
  return "double";
}

// Equal as values: doubles by value (DuckDB prints the shortest text that
// reads back to the same double), everything else as text.
bool SameDouble(const std::string& text, double d) {
  double parsed = 0;
  return absl::SimpleAtod(text, &parsed) && (parsed == d || (std::isnan(parsed) && std::isnan(d)));
}

// The repository: the view user_stats (a, b, s) over the random source, and
// one on-demand view (`odfv_head`: its YAML up to `schema:`) of `features`.
void WriteRepo(const std::string& path, const std::string& odfv_head, const std::vector<Derived>& features) {
  std::ofstream yaml(path);
  yaml << "project: odfv\n"
          "entities:\n  - {name: user, join_key: user_id, value_type: STRING}\n"
          "sources:\n  - {name: users, path: data/users.parquet, timestamp_field: ts}\n"
          "feature_views:\n  - name: user_stats\n    entities: [user]\n    ttl: 0\n"
          "    source: users\n    schema:\n"
          "      - {name: a, type: INT64}\n      - {name: b, type: DOUBLE}\n"
          "      - {name: s, type: STRING}\n"
          "on_demand_feature_views:\n"
       << odfv_head;
  for (const Derived& f : features) {
    yaml << "      - {name: " << f.name << ", type: " << f.type << ", expression: \"" << f.ours << "\"}\n";
  }
}

TEST(OnDemand, OnlineOfflineAndDuckDbAgreeOnTenThousandRandomRows) {
  const int64_t now_s = NowMicros() / 1000000;
  auto repo = RepoWithUsersParquet(SourceSelect(now_s));
  ASSERT_TRUE(repo.ok()) << repo.status();
  WriteRepo((*repo)->File("repo.yaml"),
            "  - name: derived\n    sources: [user_stats]\n"
            "    request_schema: [{name: income, type: DOUBLE}]\n    schema:\n",
            Features());
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
    csv << "user_id,event_timestamp,income\n";
    for (int i = 0; i < kUsers; ++i) csv << "u" << i << "," << end << "," << Income(i) << "\n";
  }
  // Offline.
  const std::string offline_file = dir.File("offline.parquet");
  auto hist = (*cluster)->Ctl({"get-historical", "--features", "derived", "--entities",
                               dir.File("entities.csv"), "--output", offline_file});
  ASSERT_EQ(hist.exit_code, 0) << hist.out << hist.err;
  std::string cols;
  for (const Derived& f : Features()) absl::StrAppend(&cols, ", ", f.name);
  auto offline = DuckQuery(absl::StrCat("SELECT user_id", cols, " FROM read_parquet('", offline_file, "')"));
  ASSERT_TRUE(offline.ok()) << offline.status();
  ASSERT_EQ(offline->size(), static_cast<size_t>(kUsers));

  // Independent: DuckDB over the source and the entity file.
  std::string sql_cols;
  for (const Derived& f : Features()) absl::StrAppend(&sql_cols, ", ", f.sql, " AS ", f.name);
  auto expected = DuckQuery(absl::StrCat(
      "SELECT user_id", sql_cols, " FROM (SELECT user_id, TRY_CAST(income AS DOUBLE) AS income "
      "FROM read_csv('", dir.File("entities.csv"), "', all_varchar = true)) e "
      "LEFT JOIN (SELECT user_id, a, b, s FROM '", (*repo)->File("data/users.parquet"),
      "') src USING (user_id)"));
  ASSERT_TRUE(expected.ok()) << expected.status();
  std::map<std::string, std::vector<Cell>> want;
  for (auto& row : *expected) want[row[0].text] = row;

  // Online, in batches, request fields with the entity rows.
  auto client = (*cluster)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  int mismatches = 0;
  for (int begin = 0; begin < kUsers; begin += 500) {
    client::OnlineRequest request;
    request.features = {"derived"};
    for (int i = begin; i < begin + 500; ++i) {
      const std::string income = Income(i);
      double d = 0;
      request.entity_rows.push_back(
          {{"user_id", Value::String(absl::StrCat("u", i))},
           {"income", income.empty() || !absl::SimpleAtod(income, &d) ? Value::Null(ValueType::kDouble)
                                                                      : Value::Double(d)}});
    }
    auto online = (*client)->GetOnlineFeatures(request);
    ASSERT_TRUE(online.ok()) << online.status();
    ASSERT_EQ(online->feature_refs.size(), Features().size());
    for (int i = begin; i < begin + 500; ++i) {
      const auto& on = online->rows[static_cast<size_t>(i - begin)];
      const std::vector<Cell>& off = (*offline)[static_cast<size_t>(i)];
      ASSERT_EQ(off[0].text, absl::StrCat("u", i));
      const std::vector<Cell>& x = want.at(off[0].text);
      for (size_t f = 0; f < Features().size(); ++f) {
        const Value& v = on[f].value;
        const std::string offline_text = off[f + 1].is_null ? "NULL" : off[f + 1].text;
        const std::string expected_text = x[f + 1].is_null ? "NULL" : x[f + 1].text;
        bool same;
        if (!v.is_null() && v.type == ValueType::kDouble) {
          const double d = std::get<double>(v.data);
          same = SameDouble(offline_text, d) && SameDouble(expected_text, d);
        } else {
          same = OnlineText(v) == offline_text && offline_text == expected_text;
        }
        EXPECT_EQ(on[f].status, v.is_null() ? client::FeatureStatus::kNullValue
                                            : client::FeatureStatus::kPresent);
        if (!same && ++mismatches <= 10) {
          ADD_FAILURE() << "u" << i << " " << Features()[f].name << ": online "
                        << (v.type == ValueType::kDouble && !v.is_null()
                                ? absl::StrCat(std::get<double>(v.data))
                                : OnlineText(v).substr(0, 40))
                        << ", offline " << offline_text.substr(0, 40) << ", DuckDB "
                        << expected_text.substr(0, 40);
        }
      }
    }
  }
  EXPECT_EQ(mismatches, 0);

  // A request field missing from the entity rows is an error, as in Feast.
  client::OnlineRequest missing;
  missing.features = {"derived:score"};
  missing.entity_rows = {{{"user_id", Value::String("u1")}}};
  auto refused = (*client)->GetOnlineFeatures(missing);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(refused.status().message()).find("income"), std::string::npos);
}

// write_to_online_store (Feast's transform-on-write): materialization
// stores the on-demand values; lookups read them (with the source row's
// event timestamp, where computed-on-read values have 0); get-historical
// recomputes them; all three equal DuckDB's; verify agrees; and a changed
// expression replaces the stored values at the next materialization.
TEST(OnDemand, StoredOnDemandViewIsMaterializedReadAndRecomputedOffline) {
  const int64_t now_s = NowMicros() / 1000000;
  auto repo = RepoWithUsersParquet(SourceSelect(now_s));
  ASSERT_TRUE(repo.ok()) << repo.status();
  // ratio, doubled, label, chars: the features that read no request field.
  std::vector<Derived> stored;
  for (const Derived& f : Features()) {
    if (f.ours.find("income") == std::string::npos) stored.push_back(f);
  }
  auto write_repo = [&](const std::vector<Derived>& features) {
    WriteRepo((*repo)->File("repo.yaml"),
              "  - name: stored\n    sources: [user_stats]\n    write_to_online_store: true\n    schema:\n",
              features);
  };
  write_repo(stored);
  auto cluster = LocalCluster::Up(2, 2);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto client = (*cluster)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  TempDir dir;
  {
    std::ofstream csv(dir.File("entities.csv"));
    csv << "user_id,event_timestamp\n";
    for (int i = 0; i < kUsers; ++i) csv << "u" << i << "," << FormatTimestamp(now_s * 1000000) << "\n";
  }
  const int64_t source_ts_us = (now_s - 3600) * 1000000;

  // Applies `features`, materializes, and checks online, offline and verify
  // against DuckDB's evaluation of the same SQL.
  auto check = [&](const std::vector<Derived>& features) {
    write_repo(features);
    auto apply = (*cluster)->Ctl({"apply", (*repo)->path()});
    ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
    auto mat = (*cluster)->Ctl({"materialize", "2020-01-01", FormatTimestamp(now_s * 1000000)});
    ASSERT_EQ(mat.exit_code, 0) << mat.out << mat.err;
    ASSERT_TRUE((*client)->Refresh().ok());

    std::string sql_cols, cols;
    for (const Derived& f : features) {
      absl::StrAppend(&sql_cols, ", ", f.sql, " AS ", f.name);
      absl::StrAppend(&cols, ", ", f.name);
    }
    auto expected = DuckQuery(absl::StrCat("SELECT user_id", sql_cols, " FROM '",
                                           (*repo)->File("data/users.parquet"), "'"));
    ASSERT_TRUE(expected.ok()) << expected.status();
    std::map<std::string, std::vector<Cell>> want;
    for (auto& row : *expected) want[row[0].text] = row;
    ASSERT_EQ(want.size(), static_cast<size_t>(kUsers));

    const std::string offline_file = dir.File("offline.parquet");
    auto hist = (*cluster)->Ctl({"get-historical", "--features", "stored", "--entities",
                                 dir.File("entities.csv"), "--output", offline_file});
    ASSERT_EQ(hist.exit_code, 0) << hist.out << hist.err;
    auto offline = DuckQuery(absl::StrCat("SELECT user_id", cols, " FROM read_parquet('", offline_file, "')"));
    ASSERT_TRUE(offline.ok()) << offline.status();
    ASSERT_EQ(offline->size(), static_cast<size_t>(kUsers));

    int mismatches = 0;
    for (int begin = 0; begin < kUsers; begin += 1000) {
      client::OnlineRequest request;
      request.features = {"stored"};
      for (int i = begin; i < begin + 1000; ++i) {
        request.entity_rows.push_back({{"user_id", Value::String(absl::StrCat("u", i))}});
      }
      auto online = (*client)->GetOnlineFeatures(request);
      ASSERT_TRUE(online.ok()) << online.status();
      for (int i = begin; i < begin + 1000; ++i) {
        const auto& on = online->rows[static_cast<size_t>(i - begin)];
        const std::vector<Cell>& off = (*offline)[static_cast<size_t>(i)];
        ASSERT_EQ(off[0].text, absl::StrCat("u", i));
        const std::vector<Cell>& x = want.at(off[0].text);
        for (size_t f = 0; f < features.size(); ++f) {
          const Value& v = on[f].value;
          // Read from the store: the source row's timestamp, not 0.
          EXPECT_EQ(on[f].event_ts_us, source_ts_us);
          const std::string offline_text = off[f + 1].is_null ? "NULL" : off[f + 1].text;
          const std::string expected_text = x[f + 1].is_null ? "NULL" : x[f + 1].text;
          const bool same = !v.is_null() && v.type == ValueType::kDouble
                                ? SameDouble(offline_text, std::get<double>(v.data)) &&
                                      SameDouble(expected_text, std::get<double>(v.data))
                                : OnlineText(v) == offline_text && offline_text == expected_text;
          if (!same && ++mismatches <= 10) {
            ADD_FAILURE() << "u" << i << " " << features[f].name << ": online "
                          << OnlineText(v).substr(0, 40) << ", offline " << offline_text.substr(0, 40)
                          << ", DuckDB " << expected_text.substr(0, 40);
          }
        }
      }
    }
    EXPECT_EQ(mismatches, 0);
    auto verify = (*cluster)->Ctl({"verify", "--views", "stored"});
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  };
  check(stored);
  // A changed expression: the next materialization replaces every value.
  stored[1].ours = "if(a > 0, a * 3, coalesce(a, -7))";
  stored[1].sql = "CASE WHEN a > 0 THEN a * 3 ELSE coalesce(a, -7) END";
  check(stored);
}

}  // namespace
}  // namespace quiver::testing
