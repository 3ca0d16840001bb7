// CSV files of quiverctl: an RFC 4180 reader, entity rows for get-online and
// feature rows for push.
//
// RFC 4180: fields separated by ',', records by LF or CRLF; a field may be
// quoted with '"' (then it may hold commas, line breaks and '""' for a quote).
// Empty physical lines are skipped; a final line break is optional; a leading
// UTF-8 byte-order mark is ignored.
//
// Thread-safety: pure functions.
#ifndef QUIVER_COORDINATOR_CTL_CSV_H_
#define QUIVER_COORDINATOR_CTL_CSV_H_

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver/client/client.h"
#include "quiver/keys/value.h"

namespace quiver::ctl {

struct CsvRecord {
  int line = 0;  // 1-based physical line where the record starts
  std::vector<std::string> cells;
};

// Splits `text` into records. Errors: kInvalidArgument with the line number
// for an unterminated quoted field, a quote inside an unquoted field, or text
// after a closing quote.
absl::StatusOr<std::vector<CsvRecord>> ParseCsv(std::string_view text);

struct EntityRows {
  std::vector<std::string> header;  // join keys, in CSV header order
  std::vector<std::map<std::string, Value>> rows;  // one per data record, in order
};

// Reads entity rows: the header names join keys, each cell is parsed with
// ParseScalar as the join key's type in `join_key_types`.
// Errors: kInvalidArgument for an empty file, an unknown, empty or duplicate
// header column (named), a record with the wrong number of cells or a cell
// that does not parse or is empty (with its line number).
absl::StatusOr<EntityRows> ParseEntityCsv(std::string_view text,
                                          const std::map<std::string, ValueType>& join_key_types);

// What a push file must hold for one feature view.
struct PushSchema {
  std::map<std::string, ValueType> join_keys;  // the view's join keys
  std::string timestamp_field;                 // the source's event timestamp column
  std::string created_timestamp_column;        // optional column; empty: none
  std::vector<std::pair<std::string, ValueType>> features;  // every feature, schema order
};

// Reads rows to push into a view (Feast's push: every schema column given).
// The header must name every join key, the event timestamp column and every
// feature, and may name the created timestamp column; no other column, none
// twice. Join keys and features parse with ParseScalar as their types;
// timestamps as microseconds or RFC 3339 (UTC when no zone). An empty feature
// cell is a null; an empty created cell is 0; an empty key or event time is an
// error. LIST features cannot be written as CSV cells: such a view is refused
// (push it through the C++ client's Push).
// Errors: kInvalidArgument naming the column or line (as ParseEntityCsv).
absl::StatusOr<std::vector<client::WriteRowInput>> ParsePushCsv(std::string_view text,
                                                                const PushSchema& schema);

}  // namespace quiver::ctl

#endif  // QUIVER_COORDINATOR_CTL_CSV_H_
