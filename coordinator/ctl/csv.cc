#include "ctl/csv.h"

#include <map>
#include <set>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace quiver::ctl {
namespace {

absl::Status LineError(int line, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", std::string(what)));
}

}  // namespace

absl::StatusOr<std::vector<CsvRecord>> ParseCsv(std::string_view text) {
  std::vector<CsvRecord> records;
  int line = 1;
  size_t i = 0;
  const size_t n = text.size();
  // Spreadsheets often start UTF-8 CSV files with a byte-order mark.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;
  while (i < n) {
    // An empty physical line is not a record.
    if (text[i] == '\n' || (text[i] == '\r' && i + 1 < n && text[i + 1] == '\n')) {
      i += text[i] == '\r' ? 2 : 1;
      ++line;
      continue;
    }
    CsvRecord rec;
    rec.line = line;
    bool end_of_record = false;
    while (!end_of_record) {
      std::string cell;
      if (i < n && text[i] == '"') {
        const int quote_line = line;
        ++i;
        while (true) {
          if (i >= n) return LineError(quote_line, "unterminated quoted field");
          const char c = text[i++];
          if (c == '"') {
            if (i < n && text[i] == '"') {
              cell.push_back('"');
              ++i;
            } else {
              break;
            }
          } else {
            if (c == '\n') ++line;
            cell.push_back(c);
          }
        }
        if (i < n && text[i] != ',' && text[i] != '\n' &&
            !(text[i] == '\r' && i + 1 < n && text[i + 1] == '\n') &&
            !(text[i] == '\r' && i + 1 == n)) {
          return LineError(line, "text after a closing quote");
        }
      } else {
        while (i < n && text[i] != ',' && text[i] != '\n') {
          if (text[i] == '\r' && (i + 1 == n || text[i + 1] == '\n')) break;
          if (text[i] == '"') return LineError(line, "quote inside an unquoted field");
          cell.push_back(text[i++]);
        }
      }
      rec.cells.push_back(std::move(cell));
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      // End of line or of input.
      if (i < n && text[i] == '\r') ++i;
      if (i < n && text[i] == '\n') {
        ++i;
        ++line;
      }
      end_of_record = true;
    }
    records.push_back(std::move(rec));
  }
  return records;
}

absl::StatusOr<EntityRows> ParseEntityCsv(std::string_view text,
                                          const std::map<std::string, ValueType>& join_key_types) {
  auto records = ParseCsv(text);
  if (!records.ok()) return records.status();
  if (records->empty()) {
    return absl::InvalidArgumentError("the entity CSV is empty (it needs a header of join keys)");
  }
  EntityRows out;
  const CsvRecord& header = records->front();
  std::vector<ValueType> types;
  std::set<std::string> seen;
  for (const std::string& column : header.cells) {
    if (column.empty()) return LineError(header.line, "empty column name in the header");
    auto it = join_key_types.find(column);
    if (it == join_key_types.end()) {
      std::vector<std::string> known;
      for (const auto& [k, t] : join_key_types) known.push_back(k);
      return LineError(header.line, absl::StrCat("unknown join key column '", column,
                                                 "' (known join keys: ",
                                                 absl::StrJoin(known, ", "), ")"));
    }
    if (!seen.insert(column).second) {
      return LineError(header.line, absl::StrCat("column '", column, "' appears twice"));
    }
    out.header.push_back(column);
    types.push_back(it->second);
  }
  for (size_t r = 1; r < records->size(); ++r) {
    const CsvRecord& rec = (*records)[r];
    if (rec.cells.size() != out.header.size()) {
      return LineError(rec.line, absl::StrCat("expected ", out.header.size(), " cells, found ",
                                              rec.cells.size()));
    }
    std::map<std::string, Value> row;
    for (size_t c = 0; c < rec.cells.size(); ++c) {
      if (rec.cells[c].empty()) {
        return LineError(rec.line, absl::StrCat("empty value for join key '", out.header[c], "'"));
      }
      auto v = ParseScalar(types[c], rec.cells[c]);
      if (!v.ok()) {
        return LineError(rec.line,
                         absl::StrCat("column '", out.header[c], "': ", v.status().message()));
      }
      row.emplace(out.header[c], *std::move(v));
    }
    out.rows.push_back(std::move(row));
  }
  return out;
}

absl::StatusOr<std::vector<client::WriteRowInput>> ParsePushCsv(std::string_view text,
                                                                const PushSchema& schema) {
  for (const auto& [name, type] : schema.features) {
    if (IsList(type)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "feature '", name, "' is ", TypeName(type),
          ": push from CSV takes scalar features only (use the C++ client's Push)"));
    }
  }
  auto records = ParseCsv(text);
  if (!records.ok()) return records.status();
  if (records->empty()) {
    return absl::InvalidArgumentError("the push CSV is empty (it needs a header)");
  }
  // What each column is: a join key, the event or created timestamp, or
  // feature i.
  enum class Kind { kKey, kEventTs, kCreatedTs, kFeature };
  struct Column {
    Kind kind;
    std::string name;
    ValueType type = ValueType::kInvalid;
    size_t feature = 0;
  };
  std::map<std::string, Column> known;
  for (const auto& [name, type] : schema.join_keys) known[name] = {Kind::kKey, name, type};
  for (size_t i = 0; i < schema.features.size(); ++i) {
    known[schema.features[i].first] = {Kind::kFeature, schema.features[i].first,
                                       schema.features[i].second, i};
  }
  known[schema.timestamp_field] = {Kind::kEventTs, schema.timestamp_field,
                                   ValueType::kUnixTimestamp};
  if (!schema.created_timestamp_column.empty()) {
    known[schema.created_timestamp_column] = {Kind::kCreatedTs, schema.created_timestamp_column,
                                              ValueType::kUnixTimestamp};
  }
  const CsvRecord& header = records->front();
  std::vector<Column> columns;
  std::set<std::string> seen;
  for (const std::string& name : header.cells) {
    auto it = known.find(name);
    if (it == known.end()) {
      return LineError(header.line, absl::StrCat("unknown column '", name, "'"));
    }
    if (!seen.insert(name).second) {
      return LineError(header.line, absl::StrCat("column '", name, "' appears twice"));
    }
    columns.push_back(it->second);
  }
  for (const auto& [name, column] : known) {
    if (column.kind != Kind::kCreatedTs && !seen.count(name)) {
      return LineError(header.line, absl::StrCat("missing column '", name, "'"));
    }
  }
  std::vector<client::WriteRowInput> rows;
  for (size_t r = 1; r < records->size(); ++r) {
    const CsvRecord& rec = (*records)[r];
    if (rec.cells.size() != columns.size()) {
      return LineError(rec.line, absl::StrCat("expected ", columns.size(), " cells, found ",
                                              rec.cells.size()));
    }
    client::WriteRowInput row;
    row.values.resize(schema.features.size());
    for (size_t c = 0; c < columns.size(); ++c) {
      const Column& col = columns[c];
      const std::string& cell = rec.cells[c];
      if (cell.empty() && (col.kind == Kind::kKey || col.kind == Kind::kEventTs)) {
        return LineError(rec.line, absl::StrCat("empty value for '", col.name, "'"));
      }
      absl::StatusOr<Value> v = ParseScalar(col.type, cell);  // empty text: null
      if (v.ok()) {
        if (absl::Status range = CheckValue(*v); !range.ok()) v = range;  // FLOAT, INT32 range
      }
      if (!v.ok()) {
        return LineError(rec.line, absl::StrCat("column '", col.name, "': ", v.status().message()));
      }
      switch (col.kind) {
        case Kind::kKey:
          row.entity.emplace(col.name, *std::move(v));
          break;
        case Kind::kEventTs:
          row.event_ts_us = std::get<int64_t>(v->data);
          break;
        case Kind::kCreatedTs:
          row.created_ts_us = v->is_null() ? 0 : std::get<int64_t>(v->data);
          break;
        case Kind::kFeature:
          row.values[col.feature] = *std::move(v);
          break;
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace quiver::ctl
