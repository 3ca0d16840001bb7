// WriteRow.packed_values (proto/quiver.proto), the write side's packed
// encoding of one row's features: per feature, u8 type tag (ValueType; 0 =
// null, nothing follows), then for STRING, BYTES and lists a u32 payload
// length, then the AppendPayload bytes (quiver/keys/value.h). Integers
// little-endian. The client packs Push and materialization rows this way; a
// node checks the cells and stores tag + payload as they are (the row store's
// cell format), so a feature value is never decoded on the write path.
//
// Thread-safety: pure functions.
#ifndef QUIVER_KEYS_PACKED_VALUES_H_
#define QUIVER_KEYS_PACKED_VALUES_H_

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quiver/keys/value.h"

namespace quiver {

// Appends `values` (each well-formed for its type, CheckValue) to `out`.
void AppendPackedValues(std::span<const Value> values, std::string* out);

// Appends one null cell.
inline void AppendPackedNull(std::string* out) { out->push_back(0); }

// Appends one non-null cell of type `t` whose AppendPayload bytes are
// `payload` (for producers that hold raw column data rather than Values, such
// as the materializer reading DuckDB vectors). The caller guarantees that
// `payload` is what AppendPayload writes for a valid value of `t`.
void AppendPackedPayload(ValueType t, std::string_view payload, std::string* out);

// Decodes one value per `types` into `out` (appended). On error,
// `*bad_feature` (if given) is the index of the feature that failed, or
// types.size() for trailing bytes. Payloads are decoded, not range-checked
// (CheckValue). Errors: kInvalidArgument (truncated, a tag other than 0 or
// the declared type, a malformed payload, trailing bytes).
absl::Status UnpackValues(std::string_view in, std::span<const ValueType> types,
                          std::vector<Value>* out, size_t* bad_feature = nullptr);

// One cell of a packed_values string, not decoded.
struct PackedCell {
  bool is_null = true;
  std::string_view payload;  // the AppendPayload bytes; empty for a null
};

// Reads the next cell of `*in`, declared `declared`, and consumes it. The
// payload (a view into `*in`) is checked as CheckPayload does, without
// building a Value. Errors: kInvalidArgument (truncated, a tag other than 0
// or `declared`, a malformed payload).
absl::StatusOr<PackedCell> NextPackedCell(std::string_view* in, ValueType declared);

// The same without the checks, for bytes that already passed
// CheckPackedValues against the same types (the row store encodes a row it
// checked). Undefined results for anything else.
PackedCell NextCheckedPackedCell(std::string_view* in, ValueType declared);

// Checks that `in` holds exactly one well-formed cell per `types`
// (NextPackedCell), without decoding. On error `*bad_feature` (if given) is
// the failing feature's index, or types.size() for trailing bytes.
// Errors: kInvalidArgument.
absl::Status CheckPackedValues(std::string_view in, std::span<const ValueType> types,
                               size_t* bad_feature = nullptr);

// WriteRequest.packed_rows (proto/quiver.proto): rows back to back, each
//   u32 entity key length | entity key | i64 event_ts_us | i64 created_ts_us |
//   u32 packed length | packed values.
struct WriteRowView {
  std::string_view entity_key;
  int64_t event_ts_us = 0;
  int64_t created_ts_us = 0;
  std::string_view packed_values;  // not yet checked (CheckPackedValues)
};

// Appends one row to `out`.
void AppendWriteRow(std::string_view entity_key, int64_t event_ts_us, int64_t created_ts_us,
                    std::string_view packed_values, std::string* out);

// Reads the next row of `*in` (views into `*in`) and consumes it.
// Errors: kInvalidArgument for a truncated row.
absl::StatusOr<WriteRowView> NextWriteRow(std::string_view* in);

}  // namespace quiver

#endif  // QUIVER_KEYS_PACKED_VALUES_H_
