// Row value codec of the RowStore (format 1, see row_store.h) and the
// last-writer-wins order. Private to storage/.
//
// Layout, all integers little-endian like the rest of Quiver's encodings:
//   u8 format=1 | i64 event_ts_us | i64 created_ts_us | u32 schema_version |
//   u16 n | n × u32 end offsets (relative to the start of the values area) |
//   values, each u8 type tag (0 = null) + AppendPayload bytes
// Feature i spans [end[i-1], end[i]) of the values area (end[-1] = 0), so a
// reader jumps straight to the features it was asked for.
//
// Thread-safety: pure functions.
#ifndef QUIVER_STORAGE_SRC_ROW_CODEC_H_
#define QUIVER_STORAGE_SRC_ROW_CODEC_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "quiver/keys/value.h"

namespace quiver::storage::internal {

inline constexpr uint8_t kRowFormat = 1;
inline constexpr size_t kRowHeaderBytes = 1 + 8 + 8 + 4 + 2;

struct RowHeader {
  int64_t event_ts_us = 0;
  int64_t created_ts_us = 0;
  uint32_t schema_version = 0;
  uint16_t num_values = 0;
};

// Appends the encoding of a row to `*out` (the write path reuses one buffer
// for a whole batch: no allocation per row once it has grown). `values` must
// already be checked (CheckValue, declared types) and hold at most 65535
// entries.
void AppendRow(int64_t event_ts_us, int64_t created_ts_us, uint32_t schema_version,
               std::span<const Value> values, std::string* out);

// The same for a row whose features arrive as WriteRow.packed_values
// (quiver/keys/packed_values.h), one per `types`, already checked with
// CheckPackedValues against `types`: each cell is stored as tag + payload
// without being decoded.
void AppendPackedRow(int64_t event_ts_us, int64_t created_ts_us, uint32_t schema_version,
                     std::string_view packed, std::span<const ValueType> types,
                     std::string* out);

// Parses the fixed header and checks that the offset table is consistent with
// the value's size. Returns nullopt for anything that is not a format-1 row.
std::optional<RowHeader> ParseRowHeader(std::string_view row);

// The stored bytes of feature `index` (u8 type tag, then the payload) of a row
// whose header parsed; `index` must be < header.num_values. A view into `row`.
std::string_view RowCell(std::string_view row, const RowHeader& header, int index);

// Checks a cell's tag against the schema's type: 0 (null, no payload) or
// `declared`. The payload itself is checked by DecodePayload. Errors:
// kDataLoss naming feature `index`.
absl::Status CheckCell(std::string_view cell, int index, ValueType declared);

// True when row `a` wins over row `b` under last-writer-wins: greater
// (event_ts, created_ts), then greater bytes. A row that does not parse loses
// to one that does, so a valid write heals a damaged row; two damaged rows
// compare by bytes. A strict total order on distinct byte strings, which makes
// "keep the greater" associative and commutative.
bool RowWins(std::string_view a, std::string_view b);

// event_ts + ttl < now, without overflow. ttl_seconds 0 never expires.
bool IsExpired(int64_t event_ts_us, int64_t ttl_seconds, int64_t now_us);

}  // namespace quiver::storage::internal

#endif  // QUIVER_STORAGE_SRC_ROW_CODEC_H_
