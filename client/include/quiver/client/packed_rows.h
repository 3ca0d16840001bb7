// The packed row encoding of GetResponse (proto/quiver.proto, ViewResult.
// packed_rows): how a node answers the C++ client without building one Value
// message per feature. Per row:
//   u8 status (quiver.v1.RowStatus) | i64 event_ts_us (unless NOT_FOUND) |
//   PRESENT only: per requested feature, u32 length + cell,
// where a cell is u8 type tag (ValueType; 0 = null) + AppendPayload bytes, the
// same bytes the row store keeps, so the node copies them without decoding.
// Integers little-endian.
//
// Thread-safety: writers and readers are single-threaded objects.
#ifndef QUIVER_CLIENT_PACKED_ROWS_H_
#define QUIVER_CLIENT_PACKED_ROWS_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver/keys/value.h"

namespace quiver::client {

enum class PackedStatus : uint8_t { kPresent = 1, kNotFound = 2, kOutsideMaxAge = 3 };

// Appends rows to a caller-owned buffer (e.g. a mutable protobuf bytes field).
class PackedRowWriter {
 public:
  explicit PackedRowWriter(std::string* out) : out_(out) {}
  void NotFound();
  // unit: µs since the epoch.
  void OutsideMaxAge(int64_t event_ts_us);
  // `cells`: one per requested feature, tag + payload as stored.
  void Present(int64_t event_ts_us, std::span<const std::string_view> cells);

 private:
  std::string* out_;
};

// Decodes rows one at a time from a packed_rows field.
class PackedRowReader {
 public:
  explicit PackedRowReader(std::string_view in) : in_(in) {}
  bool done() const { return in_.empty(); }

  struct Row {
    PackedStatus status = PackedStatus::kNotFound;
    int64_t event_ts_us = 0;
  };
  // Reads the next row's header. For kPresent, call NextCell exactly
  // `features` times before the next row.
  // Errors: kDataLoss (truncated, unknown status).
  absl::StatusOr<Row> NextRow();
  // Decodes the next cell as a value of `declared` (a null tag gives a null
  // of that type). Errors: kDataLoss (truncated, another type, bad payload).
  absl::StatusOr<Value> NextCell(ValueType declared);

 private:
  std::string_view in_;
};

}  // namespace quiver::client

#endif  // QUIVER_CLIENT_PACKED_ROWS_H_
