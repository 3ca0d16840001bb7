#include "row_codec.h"

#include <cstring>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "quiver/keys/packed_values.h"

namespace quiver::storage::internal {
namespace {

template <typename T>
void PutLE(T v, std::string* out) {
  using U = std::make_unsigned_t<T>;
  U u = static_cast<U>(v);
  for (size_t i = 0; i < sizeof(T); ++i) {
    out->push_back(static_cast<char>(u & 0xff));
    u = static_cast<U>(u >> 8);
  }
}

template <typename T>
T GetLE(const char* p) {
  using U = std::make_unsigned_t<T>;
  U u = 0;
  for (size_t i = sizeof(T); i-- > 0;) {
    u = static_cast<U>((u << 8) | static_cast<uint8_t>(p[i]));
  }
  return static_cast<T>(u);
}

uint32_t EndOffset(std::string_view row, int i) {
  return GetLE<uint32_t>(row.data() + kRowHeaderBytes + 4 * static_cast<size_t>(i));
}

// Appends the row header and room for an offset table of `n` entries;
// returns where the table starts (the values area follows it).
size_t BeginRow(int64_t event_ts_us, int64_t created_ts_us, uint32_t schema_version, size_t n,
                std::string* out) {
  out->push_back(static_cast<char>(kRowFormat));
  PutLE(event_ts_us, out);
  PutLE(created_ts_us, out);
  PutLE(schema_version, out);
  PutLE(static_cast<uint16_t>(n), out);
  const size_t table = out->size();
  out->resize(table + 4 * n);
  return table;
}

// Records in the table at `table` (of `n` entries) that value `i` ends where
// `*out` ends now.
void SetEnd(size_t table, size_t n, size_t i, std::string* out) {
  uint32_t end = static_cast<uint32_t>(out->size() - (table + 4 * n));
  for (size_t b = 0; b < 4; ++b, end >>= 8) {
    (*out)[table + 4 * i + b] = static_cast<char>(end & 0xff);
  }
}

}  // namespace

void AppendRow(int64_t event_ts_us, int64_t created_ts_us, uint32_t schema_version,
               std::span<const Value> values, std::string* out) {
  const size_t n = values.size();
  const size_t table = BeginRow(event_ts_us, created_ts_us, schema_version, n, out);
  for (size_t i = 0; i < n; ++i) {
    const Value& v = values[i];
    if (v.is_null()) {
      out->push_back(0);
    } else {
      out->push_back(static_cast<char>(v.type));
      AppendPayload(v, out);
    }
    SetEnd(table, n, i, out);
  }
}

void AppendPackedRow(int64_t event_ts_us, int64_t created_ts_us, uint32_t schema_version,
                     std::string_view packed, std::span<const ValueType> types,
                     std::string* out) {
  const size_t n = types.size();
  const size_t table = BeginRow(event_ts_us, created_ts_us, schema_version, n, out);
  out->reserve(out->size() + packed.size());
  for (size_t i = 0; i < n; ++i) {
    const PackedCell cell = NextCheckedPackedCell(&packed, types[i]);
    if (cell.is_null) {
      out->push_back(0);
    } else {
      out->push_back(static_cast<char>(types[i]));
      out->append(cell.payload);
    }
    SetEnd(table, n, i, out);
  }
}

std::optional<RowHeader> ParseRowHeader(std::string_view row) {
  if (row.size() < kRowHeaderBytes || static_cast<uint8_t>(row[0]) != kRowFormat) {
    return std::nullopt;
  }
  RowHeader h;
  h.event_ts_us = GetLE<int64_t>(row.data() + 1);
  h.created_ts_us = GetLE<int64_t>(row.data() + 9);
  h.schema_version = GetLE<uint32_t>(row.data() + 17);
  h.num_values = GetLE<uint16_t>(row.data() + 21);
  const size_t table_end = kRowHeaderBytes + 4 * size_t{h.num_values};
  if (row.size() < table_end) return std::nullopt;
  // Offsets must grow and the last one must end exactly at the row's end, so
  // later per-feature slicing cannot step outside the value.
  uint32_t prev = 0;
  for (int i = 0; i < h.num_values; ++i) {
    const uint32_t end = EndOffset(row, i);
    if (end <= prev) return std::nullopt;  // every value holds at least its tag
    prev = end;
  }
  if (table_end + prev != row.size()) return std::nullopt;
  return h;
}

std::string_view RowCell(std::string_view row, const RowHeader& header, int index) {
  const size_t area = kRowHeaderBytes + 4 * size_t{header.num_values};
  const uint32_t begin = index == 0 ? 0 : EndOffset(row, index - 1);
  const uint32_t end = EndOffset(row, index);
  return row.substr(area + begin, end - begin);
}

absl::Status CheckCell(std::string_view cell, int index, ValueType declared) {
  // ParseRowHeader guarantees every cell holds at least its tag.
  const uint8_t tag = static_cast<uint8_t>(cell[0]);
  if (tag == 0) {
    if (cell.size() != 1) return absl::DataLossError("stored null value has a payload");
    return absl::OkStatus();
  }
  if (tag != static_cast<uint8_t>(declared)) {
    return absl::DataLossError(absl::StrCat("stored value ", index, " has type tag ", tag,
                                            ", schema says ", TypeName(declared)));
  }
  return absl::OkStatus();
}

bool RowWins(std::string_view a, std::string_view b) {
  const std::optional<RowHeader> ha = ParseRowHeader(a);
  const std::optional<RowHeader> hb = ParseRowHeader(b);
  if (ha.has_value() != hb.has_value()) return ha.has_value();
  if (ha.has_value()) {
    // A row of a newer schema version always wins: rows of an older version
    // cannot be read any more, and re-materializing after a schema change may
    // bring older event times. Then (event_ts, created_ts), then the bytes.
    const auto ka = std::tie(ha->schema_version, ha->event_ts_us, ha->created_ts_us);
    const auto kb = std::tie(hb->schema_version, hb->event_ts_us, hb->created_ts_us);
    if (ka != kb) return ka > kb;
  }
  return a > b;
}

bool IsExpired(int64_t event_ts_us, int64_t ttl_seconds, int64_t now_us) {
  if (ttl_seconds <= 0) return false;
  const __int128 deadline = static_cast<__int128>(event_ts_us) +
                            static_cast<__int128>(ttl_seconds) * 1'000'000;
  return deadline < static_cast<__int128>(now_us);
}

}  // namespace quiver::storage::internal
