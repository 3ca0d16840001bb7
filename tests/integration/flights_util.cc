#include "flights_util.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace quiver::testing {

const std::vector<FlightsView>& FlightsViews() {
  static const auto* views = new std::vector<FlightsView>{
      {"origin_delay_stats",
       {"origin"},
       {{"avg_delay_1h", ValueType::kDouble},
        {"flights_1h", ValueType::kInt64},
        {"delay_stddev_1h", ValueType::kDouble},
        {"avg_delay_24h", ValueType::kDouble},
        {"flights_24h", ValueType::kInt64},
        {"max_delay_24h", ValueType::kInt64},
        {"delayed_1h", ValueType::kBool}},
       2 * 86400,
       "origin_delay_stats.parquet"},
      {"route_stats",
       {"origin", "destination"},
       {{"delay", ValueType::kInt64},
        {"distance", ValueType::kInt64},
        {"avg_delay_7d", ValueType::kFloat},
        {"flights_7d", ValueType::kInt32}},
       30 * 86400,
       "route_stats.parquet"},
  };
  return *views;
}

std::string FlightsDataDir() {
  const std::string dir = SourceDir() + "/examples/flights/data";
  EXPECT_TRUE(std::filesystem::exists(dir + "/route_stats.parquet"))
      << "run examples/flights/prepare.sh first (scripts/test.sh does)";
  return dir;
}

namespace {

// Does `got` hold the value DuckDB printed as `cell`?
bool SameValue(const Value& got, ValueType type, const Cell& cell) {
  if (cell.is_null) return got.is_null();
  if (got.is_null()) return false;
  switch (type) {
    case ValueType::kInt32:
    case ValueType::kInt64:
      return std::get<int64_t>(got.data) == std::strtoll(cell.text.c_str(), nullptr, 10);
    case ValueType::kDouble:
      return std::get<double>(got.data) == std::strtod(cell.text.c_str(), nullptr);
    case ValueType::kFloat:
      return std::get<double>(got.data) ==
             static_cast<double>(std::strtof(cell.text.c_str(), nullptr));
    case ValueType::kBool:
      return std::get<bool>(got.data) == (cell.text == "true");
    case ValueType::kString:
      return std::get<std::string>(got.data) == cell.text;
    default:
      return false;
  }
}

std::string Show(const Value& v) {
  std::string s;
  AppendJson(v, &s);
  return s;
}

}  // namespace

ViewCheck CheckViewAgainstDuckDb(client::Client& client, const FlightsView& view,
                                 int64_t start_us, int64_t end_us, int batch,
                                 int deadline_ms) {
  ViewCheck check;
  const std::string keys = absl::StrJoin(view.join_keys, ", ");
  std::vector<std::string> cols;
  for (const auto& [name, type] : view.features) cols.push_back(name);
  const std::string sql = absl::StrCat(
      "SELECT ", keys, ", epoch_us(event_timestamp) AS ts, ", absl::StrJoin(cols, ", "),
      " FROM read_parquet('", FlightsDataDir(), "/", view.file, "') WHERE event_timestamp >= ",
      "make_timestamp(", start_us, ") AND event_timestamp < make_timestamp(", end_us,
      ") QUALIFY row_number() OVER (PARTITION BY ", keys,
      " ORDER BY event_timestamp DESC, created DESC) = 1 ORDER BY ", keys);
  auto expected = DuckQuery(sql);
  EXPECT_TRUE(expected.ok()) << expected.status();
  if (!expected.ok()) return check;
  const size_t nkeys = view.join_keys.size();
  std::vector<std::string> refs;
  for (const auto& c : cols) refs.push_back(view.name + ":" + c);

  for (size_t begin = 0; begin < expected->size(); begin += batch) {
    const size_t end = std::min(expected->size(), begin + batch);
    client::OnlineRequest req;
    req.features = refs;
    req.deadline = std::chrono::milliseconds(deadline_ms);
    for (size_t r = begin; r < end; ++r) {
      std::map<std::string, Value> row;
      for (size_t k = 0; k < nkeys; ++k) {
        row[view.join_keys[k]] = Value::String((*expected)[r][k].text);
      }
      req.entity_rows.push_back(std::move(row));
    }
    const int64_t t0 = NowMicros();
    auto resp = client.GetOnlineFeatures(req);
    const int64_t t1 = NowMicros();
    if (!resp.ok()) {
      check.failed_lookups += end - begin;
      if (check.first_mismatch.empty()) check.first_mismatch = resp.status().ToString();
      continue;
    }
    for (size_t r = begin; r < end; ++r) {
      const auto& exp = (*expected)[r];
      const auto& got = resp->rows[r - begin];
      ++check.keys;
      const int64_t ts = std::strtoll(exp[nkeys].text.c_str(), nullptr, 10);
      // TTL rule (docs/architecture.md): expired when event_ts + ttl < now.
      const int64_t expiry = ts + view.ttl_s * 1000000;
      const bool surely_expired = view.ttl_s > 0 && expiry < t0 - 120000000;
      const bool surely_live = view.ttl_s == 0 || expiry > t1 + 120000000;
      for (size_t f = 0; f < cols.size(); ++f) {
        const auto& fv = got[f];
        const Cell& cell = exp[nkeys + 1 + f];
        bool ok = fv.event_ts_us == ts;
        if (fv.status == client::FeatureStatus::kNotFound && surely_expired) {
          // The TTL compaction filter drops expired rows (docs/architecture.md,
          // "TTL"); when a compaction ran since the load (ingested files and
          // periodic compactions pass through it) the row is gone.
          ++check.outside_max_age;
          ok = fv.value.is_null();
        } else if (fv.status == client::FeatureStatus::kOutsideMaxAge) {
          ++check.outside_max_age;
          ok = ok && !surely_live && fv.value.is_null();
        } else if (fv.status == client::FeatureStatus::kNullValue) {
          ++check.null_values;
          ok = ok && !surely_expired && cell.is_null;
        } else if (fv.status == client::FeatureStatus::kPresent) {
          ++check.present;
          ok = ok && !surely_expired && SameValue(fv.value, view.features[f].second, cell);
        } else {
          ok = false;
        }
        if (!ok) {
          ++check.mismatches;
          if (check.first_mismatch.empty()) {
            check.first_mismatch = absl::StrCat(
                view.name, " key ", exp[0].text, nkeys > 1 ? "," + exp[1].text : "", " ",
                refs[f], ": got status ", client::FeatureStatusName(fv.status), " value ",
                Show(fv.value), " ts ", fv.event_ts_us, "; expected ",
                cell.is_null ? "NULL" : cell.text, " ts ", ts);
          }
        }
      }
    }
  }
  return check;
}

}  // namespace quiver::testing
