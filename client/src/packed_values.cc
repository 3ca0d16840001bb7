#include "quiver/keys/packed_values.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "fixed.h"

namespace quiver {

using internal::GetFixed;
using internal::PutFixed;

void AppendPackedValues(std::span<const Value> values, std::string* out) {
  for (const Value& v : values) {
    if (v.is_null()) {
      out->push_back(0);
      continue;
    }
    out->push_back(static_cast<char>(v.type));
    if (FixedPayloadBytes(v.type) != 0) {
      AppendPayload(v, out);
      continue;
    }
    const size_t at = out->size();
    out->append(4, '\0');
    AppendPayload(v, out);
    const auto len = static_cast<uint32_t>(out->size() - at - 4);
    std::memcpy(out->data() + at, &len, sizeof(len));  // little-endian hosts, as PutFixed
  }
}

absl::Status UnpackValues(std::string_view in, std::span<const ValueType> types,
                          std::vector<Value>* out, size_t* bad_feature) {
  for (size_t i = 0; i < types.size(); ++i) {
    absl::StatusOr<PackedCell> cell = NextPackedCell(&in, types[i]);
    absl::StatusOr<Value> v = !cell.ok()        ? absl::StatusOr<Value>(cell.status())
                              : cell->is_null ? Value::Null(types[i])
                                              : DecodePayload(types[i], cell->payload);
    if (!v.ok()) {
      if (bad_feature != nullptr) *bad_feature = i;
      return absl::InvalidArgumentError(v.status().message());
    }
    out->push_back(*std::move(v));
  }
  if (!in.empty()) {
    if (bad_feature != nullptr) *bad_feature = types.size();
    return absl::InvalidArgumentError("packed values have trailing bytes");
  }
  return absl::OkStatus();
}

void AppendPackedPayload(ValueType t, std::string_view payload, std::string* out) {
  out->push_back(static_cast<char>(t));
  if (FixedPayloadBytes(t) == 0) PutFixed<uint32_t>(static_cast<uint32_t>(payload.size()), out);
  out->append(payload);
}

namespace {

enum class CellError { kNone, kShort, kTag, kPayload };

// Splits the next cell off `*in` into `*cell`. With `check`, also checks
// (CheckPayload) what the layout does not already guarantee: a fixed-width
// payload has its width by construction, so only BOOL bytes and lists' inner
// structure are left. `*tag` is the cell's tag byte.
CellError SplitCell(std::string_view* in, ValueType declared, bool check, PackedCell* cell,
                    uint8_t* tag) {
  if (in->empty()) return CellError::kShort;
  *tag = static_cast<uint8_t>(in->front());
  in->remove_prefix(1);
  *cell = PackedCell{};
  if (*tag == 0) return CellError::kNone;
  if (*tag != static_cast<uint8_t>(declared)) return CellError::kTag;
  size_t n = FixedPayloadBytes(declared);
  if (n == 0) {
    uint32_t len = 0;
    if (!GetFixed<uint32_t>(in, &len)) return CellError::kShort;
    n = len;
  }
  if (in->size() < n) return CellError::kShort;
  cell->is_null = false;
  cell->payload = in->substr(0, n);
  in->remove_prefix(n);
  if (check && (declared == ValueType::kBool || IsList(declared)) &&
      !CheckPayload(declared, cell->payload).ok()) {
    return CellError::kPayload;
  }
  return CellError::kNone;
}

absl::Status CellStatus(CellError e, uint8_t tag, ValueType declared, std::string_view payload) {
  switch (e) {
    case CellError::kNone:
      return absl::OkStatus();
    case CellError::kShort:
      return absl::InvalidArgumentError("packed values end early");
    case CellError::kTag:
      return absl::InvalidArgumentError(
          absl::StrCat("has type tag ", tag, ", declared ", TypeName(declared)));
    case CellError::kPayload:
      return absl::InvalidArgumentError(CheckPayload(declared, payload).message());
  }
  return absl::InternalError("unknown cell error");
}

}  // namespace

absl::StatusOr<PackedCell> NextPackedCell(std::string_view* in, ValueType declared) {
  PackedCell cell;
  uint8_t tag = 0;
  const CellError e = SplitCell(in, declared, /*check=*/true, &cell, &tag);
  if (e != CellError::kNone) return CellStatus(e, tag, declared, cell.payload);
  return cell;
}

PackedCell NextCheckedPackedCell(std::string_view* in, ValueType declared) {
  PackedCell cell;
  uint8_t tag = 0;
  (void)SplitCell(in, declared, /*check=*/false, &cell, &tag);
  return cell;
}

absl::Status CheckPackedValues(std::string_view in, std::span<const ValueType> types,
                               size_t* bad_feature) {
  for (size_t i = 0; i < types.size(); ++i) {
    PackedCell cell;
    uint8_t tag = 0;
    if (const CellError e = SplitCell(&in, types[i], /*check=*/true, &cell, &tag);
        e != CellError::kNone) {
      if (bad_feature != nullptr) *bad_feature = i;
      return CellStatus(e, tag, types[i], cell.payload);
    }
  }
  if (!in.empty()) {
    if (bad_feature != nullptr) *bad_feature = types.size();
    return absl::InvalidArgumentError("packed values have trailing bytes");
  }
  return absl::OkStatus();
}

void AppendWriteRow(std::string_view entity_key, int64_t event_ts_us, int64_t created_ts_us,
                    std::string_view packed_values, std::string* out) {
  PutFixed<uint32_t>(static_cast<uint32_t>(entity_key.size()), out);
  out->append(entity_key);
  PutFixed<int64_t>(event_ts_us, out);
  PutFixed<int64_t>(created_ts_us, out);
  PutFixed<uint32_t>(static_cast<uint32_t>(packed_values.size()), out);
  out->append(packed_values);
}

absl::StatusOr<WriteRowView> NextWriteRow(std::string_view* in) {
  WriteRowView row;
  uint32_t key_len = 0, packed_len = 0;
  if (!GetFixed<uint32_t>(in, &key_len) || in->size() < key_len) {
    return absl::InvalidArgumentError("packed rows: truncated entity key");
  }
  row.entity_key = in->substr(0, key_len);
  in->remove_prefix(key_len);
  if (!GetFixed<int64_t>(in, &row.event_ts_us) || !GetFixed<int64_t>(in, &row.created_ts_us) ||
      !GetFixed<uint32_t>(in, &packed_len) || in->size() < packed_len) {
    return absl::InvalidArgumentError("packed rows: truncated row");
  }
  row.packed_values = in->substr(0, packed_len);
  in->remove_prefix(packed_len);
  return row;
}

}  // namespace quiver
