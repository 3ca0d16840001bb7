// Fuzz target: the packed row encoding of GetResponse
// (client/include/quiver/client/packed_rows.h), as the client decodes a
// node's ViewResult.packed_rows.
//
// Input: a declared-types prefix (fuzz_util.h TakeTypes), then packed rows.
// Rows are read as the client reads them (NextRow, then NextCell per
// declared feature for a PRESENT row) until the input is used up or an error.
// Properties: decoding never crashes; every decoded cell is a well-formed
// value of the declared type (CheckValue); re-encoding the decoded rows with
// PackedRowWriter gives back exactly the bytes consumed, except that a FLOAT
// NaN may come back with another NaN payload (floats are held as doubles);
// and the re-encoded bytes decode to the same rows.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "quiver/client/packed_rows.h"

namespace quiver::fuzz {
namespace {

using client::PackedRowReader;
using client::PackedRowWriter;
using client::PackedStatus;

struct DecodedRow {
  PackedStatus status;
  int64_t event_ts_us;
  std::vector<Value> cells;
};

bool HasFloat(const std::vector<ValueType>& types) {
  for (ValueType t : types) {
    if (ElementType(t) == ValueType::kFloat) return true;
  }
  return false;
}

// Decodes rows until the input is done or a row fails.
std::vector<DecodedRow> Decode(std::string_view in, const std::vector<ValueType>& types) {
  std::vector<DecodedRow> rows;
  PackedRowReader reader(in);
  while (!reader.done()) {
    auto row = reader.NextRow();
    if (!row.ok()) {
      FUZZ_CHECK(row.status().code() == absl::StatusCode::kDataLoss, "NextRow: %s",
                 row.status().ToString().c_str());
      break;
    }
    FUZZ_CHECK(row->status == PackedStatus::kPresent || row->status == PackedStatus::kNotFound ||
                   row->status == PackedStatus::kOutsideMaxAge,
               "status %d", static_cast<int>(row->status));
    DecodedRow d{row->status, row->event_ts_us, {}};
    bool ok = true;
    if (row->status == PackedStatus::kPresent) {
      for (ValueType t : types) {
        auto cell = reader.NextCell(t);
        if (!cell.ok()) {
          FUZZ_CHECK(cell.status().code() == absl::StatusCode::kDataLoss, "NextCell: %s",
                     cell.status().ToString().c_str());
          ok = false;
          break;
        }
        FUZZ_CHECK(cell->type == t, "cell typed %d, declared %d", static_cast<int>(cell->type),
                   static_cast<int>(t));
        const absl::Status s = CheckValue(*cell);
        FUZZ_CHECK(s.ok(), "decoded cell is ill-formed: %s", s.ToString().c_str());
        d.cells.push_back(*std::move(cell));
      }
    }
    if (!ok) break;
    rows.push_back(std::move(d));
  }
  return rows;
}

// The rows as a node writes them: each cell is tag + AppendPayload, as stored.
std::string Encode(const std::vector<DecodedRow>& rows) {
  std::string out;
  PackedRowWriter writer(&out);
  for (const DecodedRow& r : rows) {
    if (r.status == PackedStatus::kNotFound) {
      writer.NotFound();
    } else if (r.status == PackedStatus::kOutsideMaxAge) {
      writer.OutsideMaxAge(r.event_ts_us);
    } else {
      std::vector<std::string> cells;
      for (const Value& v : r.cells) {
        std::string c(1, v.is_null() ? '\0' : static_cast<char>(v.type));
        AppendPayload(v, &c);
        cells.push_back(std::move(c));
      }
      const std::vector<std::string_view> views(cells.begin(), cells.end());
      writer.Present(r.event_ts_us, views);
    }
  }
  return out;
}

}  // namespace
}  // namespace quiver::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quiver;
  using namespace quiver::fuzz;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::vector<ValueType> types = TakeTypes(&in);
  const std::vector<DecodedRow> rows = Decode(in, types);
  // Re-encoded, the decoded rows are the input's prefix.
  const std::string again = Encode(rows);
  FUZZ_CHECK(again.size() <= in.size(), "re-encoded %zu bytes of %zu", again.size(), in.size());
  if (!HasFloat(types)) {
    FUZZ_CHECK(in.substr(0, again.size()) == again, "re-encoding %zu rows differs from the input",
               rows.size());
  }
  // The re-encoding decodes to the same rows, and to the end.
  const std::vector<DecodedRow> rows_again = Decode(again, types);
  FUZZ_CHECK(rows_again.size() == rows.size(), "%zu rows decode again as %zu", rows.size(),
             rows_again.size());
  for (size_t r = 0; r < rows.size(); ++r) {
    FUZZ_CHECK(rows[r].status == rows_again[r].status && rows[r].event_ts_us == rows_again[r].event_ts_us,
               "row %zu header differs", r);
    FUZZ_CHECK(rows[r].cells.size() == rows_again[r].cells.size(), "row %zu cells", r);
    for (size_t c = 0; c < rows[r].cells.size(); ++c) {
      FUZZ_CHECK(SameValue(rows[r].cells[c], rows_again[r].cells[c]), "row %zu cell %zu differs", r, c);
    }
  }
  return 0;
}
