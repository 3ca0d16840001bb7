// Fuzz target: quiverctl's CSV reader (coordinator/ctl/csv.h): ParseCsv, and
// the entity rows (get-online) and push rows built on it.
//
// Properties: no crash; every record has at least one cell and line numbers
// never decrease; writing the records back as RFC 4180 CSV (every cell
// quoted) and parsing that gives the same cells (an independent writer
// instead of a copy of the reader); ParseEntityCsv and ParsePushCsv either
// refuse with kInvalidArgument or return rows typed as their schema says.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "ctl/csv.h"
#include "fuzz_util.h"

namespace quiver::fuzz {
namespace {

std::string WriteCsv(const std::vector<ctl::CsvRecord>& records) {
  std::string out;
  for (const auto& rec : records) {
    for (size_t c = 0; c < rec.cells.size(); ++c) {
      if (c > 0) out.push_back(',');
      out.push_back('"');
      for (char ch : rec.cells[c]) {
        if (ch == '"') out.push_back('"');
        out.push_back(ch);
      }
      out.push_back('"');
    }
    out.append("\r\n");
  }
  return out;
}

void CheckTyped(const Value& v, ValueType declared, const char* what) {
  FUZZ_CHECK(v.type == declared, "%s: typed %d, declared %d", what, static_cast<int>(v.type),
             static_cast<int>(declared));
}

}  // namespace
}  // namespace quiver::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quiver;
  using namespace quiver::fuzz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto records = ctl::ParseCsv(text);
  if (!records.ok()) {
    FUZZ_CHECK(records.status().code() == absl::StatusCode::kInvalidArgument, "%s",
               records.status().ToString().c_str());
  } else {
    int line = 0;
    for (const auto& rec : *records) {
      FUZZ_CHECK(!rec.cells.empty(), "record without cells");
      FUZZ_CHECK(rec.line >= line && rec.line >= 1, "line %d after %d", rec.line, line);
      line = rec.line;
    }
    // A record of one empty cell writes as `""`, which reads back as that.
    const std::string written = WriteCsv(*records);
    auto again = ctl::ParseCsv(written);
    FUZZ_CHECK(again.ok(), "the re-written CSV does not parse: %s", again.status().ToString().c_str());
    FUZZ_CHECK(again->size() == records->size(), "%zu records read back as %zu", records->size(),
               again->size());
    for (size_t r = 0; r < records->size(); ++r) {
      FUZZ_CHECK((*again)[r].cells == (*records)[r].cells, "record %zu reads back differently", r);
    }
  }

  const std::map<std::string, ValueType> join_keys = {
      {"user_id", ValueType::kInt64}, {"origin", ValueType::kString}, {"n", ValueType::kInt32},
      {"ts", ValueType::kUnixTimestamp}, {"ok", ValueType::kBool}, {"f", ValueType::kFloat}};
  auto entities = ctl::ParseEntityCsv(text, join_keys);
  if (!entities.ok()) {
    FUZZ_CHECK(entities.status().code() == absl::StatusCode::kInvalidArgument, "%s",
               entities.status().ToString().c_str());
  } else {
    for (const auto& row : entities->rows) {
      FUZZ_CHECK(row.size() == entities->header.size(), "entity row of %zu cells", row.size());
      for (const auto& [name, v] : row) {
        CheckTyped(v, join_keys.at(name), name.c_str());
        FUZZ_CHECK(!v.is_null(), "null join key %s", name.c_str());
      }
    }
  }

  ctl::PushSchema schema;
  schema.join_keys = {{"user_id", ValueType::kInt64}};
  schema.timestamp_field = "ts";
  schema.created_timestamp_column = "created";
  schema.features = {{"clicks", ValueType::kInt64}, {"score", ValueType::kDouble},
                     {"ratio", ValueType::kFloat},  {"small", ValueType::kInt32},
                     {"name", ValueType::kString},  {"ok", ValueType::kBool},
                     {"blob", ValueType::kBytes},   {"seen", ValueType::kUnixTimestamp}};
  auto rows = ctl::ParsePushCsv(text, schema);
  if (!rows.ok()) {
    FUZZ_CHECK(rows.status().code() == absl::StatusCode::kInvalidArgument, "%s",
               rows.status().ToString().c_str());
  } else {
    for (const auto& row : *rows) {
      FUZZ_CHECK(row.values.size() == schema.features.size(), "push row of %zu values",
                 row.values.size());
      for (size_t f = 0; f < row.values.size(); ++f) {
        CheckTyped(row.values[f], schema.features[f].second, schema.features[f].first.c_str());
        const absl::Status s = CheckValue(row.values[f]);
        FUZZ_CHECK(s.ok(), "push value %zu ill-formed: %s", f, s.ToString().c_str());
      }
      FUZZ_CHECK(row.entity.size() == 1 && !row.entity.begin()->second.is_null(), "push row key");
    }
  }
  return 0;
}
