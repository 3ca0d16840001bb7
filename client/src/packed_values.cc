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

absl::StatusOr<PackedCell> NextPackedCell(std::string_view* in, ValueType declared) {
  if (in->empty()) return absl::InvalidArgumentError("packed values end early");
  const uint8_t tag = static_cast<uint8_t>(in->front());
  in->remove_prefix(1);
  PackedCell cell;
  if (tag == 0) return cell;
  if (tag != static_cast<uint8_t>(declared)) {
    return absl::InvalidArgumentError(
        absl::StrCat("has type tag ", tag, ", declared ", TypeName(declared)));
  }
  size_t n = FixedPayloadBytes(declared);
  if (n == 0) {
    uint32_t len = 0;
    if (!GetFixed<uint32_t>(in, &len)) return absl::InvalidArgumentError("packed values end early");
    n = len;
  }
  if (in->size() < n) return absl::InvalidArgumentError("packed values end early");
  cell.is_null = false;
  cell.payload = in->substr(0, n);
  in->remove_prefix(n);
  if (absl::Status st = CheckPayload(declared, cell.payload); !st.ok()) {
    return absl::InvalidArgumentError(st.message());
  }
  return cell;
}

absl::Status CheckPackedValues(std::string_view in, std::span<const ValueType> types,
                               size_t* bad_feature) {
  for (size_t i = 0; i < types.size(); ++i) {
    absl::StatusOr<PackedCell> cell = NextPackedCell(&in, types[i]);
    if (!cell.ok()) {
      if (bad_feature != nullptr) *bad_feature = i;
      return cell.status();
    }
  }
  if (!in.empty()) {
    if (bad_feature != nullptr) *bad_feature = types.size();
    return absl::InvalidArgumentError("packed values have trailing bytes");
  }
  return absl::OkStatus();
}

}  // namespace quiver
