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

}  // namespace quiver::client
