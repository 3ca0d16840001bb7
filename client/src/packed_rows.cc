#include "quiver/client/packed_rows.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "fixed.h"

namespace quiver::client {

using internal::GetFixed;
using internal::PutFixed;

void PackedRowWriter::NotFound() { out_->push_back(static_cast<char>(PackedStatus::kNotFound)); }

void PackedRowWriter::OutsideMaxAge(int64_t event_ts_us) {
  out_->push_back(static_cast<char>(PackedStatus::kOutsideMaxAge));
  PutFixed<int64_t>(event_ts_us, out_);
}

void PackedRowWriter::Present(int64_t event_ts_us, std::span<const std::string_view> cells) {
  size_t bytes = 1 + 8;
  for (std::string_view c : cells) bytes += 4 + c.size();
  out_->reserve(out_->size() + bytes);
  out_->push_back(static_cast<char>(PackedStatus::kPresent));
  PutFixed<int64_t>(event_ts_us, out_);
  for (std::string_view c : cells) {
    PutFixed<uint32_t>(static_cast<uint32_t>(c.size()), out_);
    out_->append(c);
  }
}

absl::StatusOr<PackedRowReader::Row> PackedRowReader::NextRow() {
  if (in_.empty()) return absl::DataLossError("packed rows: missing row");
  Row row;
  const uint8_t status = static_cast<uint8_t>(in_.front());
  in_.remove_prefix(1);
  switch (status) {
    case static_cast<uint8_t>(PackedStatus::kNotFound):
      row.status = PackedStatus::kNotFound;
      return row;
    case static_cast<uint8_t>(PackedStatus::kPresent):
    case static_cast<uint8_t>(PackedStatus::kOutsideMaxAge):
      row.status = static_cast<PackedStatus>(status);
      if (!GetFixed<int64_t>(&in_, &row.event_ts_us)) {
        return absl::DataLossError("packed rows: truncated timestamp");
      }
      return row;
    default:
      return absl::DataLossError(absl::StrCat("packed rows: unknown row status ", status));
  }
}

absl::StatusOr<Value> PackedRowReader::NextCell(ValueType declared) {
  uint32_t size = 0;
  if (!GetFixed<uint32_t>(&in_, &size) || size == 0 || size > in_.size()) {
    return absl::DataLossError("packed rows: truncated cell");
  }
  const std::string_view cell = in_.substr(0, size);
  in_.remove_prefix(size);
  const auto tag = static_cast<ValueType>(cell.front());
  if (tag == ValueType::kInvalid) {
    if (size != 1) return absl::DataLossError("packed rows: null cell with a payload");
    return Value::Null(declared);
  }
  if (tag != declared) {
    return absl::DataLossError(absl::StrCat("packed rows: cell of type ", TypeName(tag),
                                            ", expected ", TypeName(declared)));
  }
  return DecodePayload(declared, cell.substr(1));
}

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
    auto bad = [&](const std::string& what) {
      if (bad_feature != nullptr) *bad_feature = i;
      return absl::InvalidArgumentError(what);
    };
    if (in.empty()) return bad("packed values end early");
    const uint8_t tag = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    if (tag == 0) {
      out->push_back(Value::Null(types[i]));
      continue;
    }
    if (tag != static_cast<uint8_t>(types[i])) {
      return bad(absl::StrCat("has type tag ", tag, ", declared ", TypeName(types[i])));
    }
    size_t n = FixedPayloadBytes(types[i]);
    if (n == 0) {
      uint32_t len = 0;
      if (!GetFixed<uint32_t>(&in, &len)) return bad("packed values end early");
      n = len;
    }
    if (in.size() < n) return bad("packed values end early");
    absl::StatusOr<Value> v = DecodePayload(types[i], in.substr(0, n));
    if (!v.ok()) return bad(std::string(v.status().message()));
    in.remove_prefix(n);
    out->push_back(*std::move(v));
  }
  if (!in.empty()) {
    if (bad_feature != nullptr) *bad_feature = types.size();
    return absl::InvalidArgumentError("packed values have trailing bytes");
  }
  return absl::OkStatus();
}

}  // namespace quiver::client
