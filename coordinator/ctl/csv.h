// Entity CSV files for get-online: an RFC 4180 reader and the conversion of its
// rows into typed entity rows.
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
#include <vector>

#include "absl/status/statusor.h"
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

}  // namespace quiver::ctl

#endif  // QUIVER_COORDINATOR_CTL_CSV_H_
