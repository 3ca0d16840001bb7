#include "quiver/client/convert.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace quiver::client {
namespace {

using PV = quiver::v1::Value;

template <typename List, typename T>
void FillList(const std::vector<T>& in, List* out) {
  out->mutable_val()->Reserve(static_cast<int>(in.size()));
  for (const T& x : in) out->add_val(x);
}

template <typename Out, typename List>
std::vector<Out> ReadList(const List& list) {
  return std::vector<Out>(list.val().begin(), list.val().end());
}

// The oneof case that carries a value declared as `t`.
PV::ValCase CaseOf(ValueType t) { return static_cast<PV::ValCase>(static_cast<int>(t)); }

}  // namespace

void ToProto(const Value& v, quiver::v1::Value* out) {
  out->Clear();
  if (v.is_null()) return;
  const auto* i = std::get_if<int64_t>(&v.data);
  const auto* d = std::get_if<double>(&v.data);
  const auto* s = std::get_if<std::string>(&v.data);
  const auto* il = std::get_if<std::vector<int64_t>>(&v.data);
  const auto* dl = std::get_if<std::vector<double>>(&v.data);
  const auto* sl = std::get_if<std::vector<std::string>>(&v.data);
  // A value whose variant does not match its type (CheckValue rejects those)
  // becomes null rather than a wrong field.
  switch (v.type) {
    case ValueType::kInt32:
      if (i) out->set_int32_val(static_cast<int32_t>(*i));
      break;
    case ValueType::kInt64:
      if (i) out->set_int64_val(*i);
      break;
    case ValueType::kUnixTimestamp:
      if (i) out->set_unix_timestamp_val(*i);
      break;
    case ValueType::kFloat:
      if (d) out->set_float_val(static_cast<float>(*d));
      break;
    case ValueType::kDouble:
      if (d) out->set_double_val(*d);
      break;
    case ValueType::kBool:
      if (const auto* b = std::get_if<bool>(&v.data)) out->set_bool_val(*b);
      break;
    case ValueType::kString:
      if (s) out->set_string_val(*s);
      break;
    case ValueType::kBytes:
      if (s) out->set_bytes_val(*s);
      break;
    case ValueType::kInt32List:
      if (il) {
        auto* l = out->mutable_int32_list_val();
        for (int64_t x : *il) l->add_val(static_cast<int32_t>(x));
      }
      break;
    case ValueType::kInt64List:
      if (il) FillList(*il, out->mutable_int64_list_val());
      break;
    case ValueType::kUnixTimestampList:
      if (il) FillList(*il, out->mutable_unix_timestamp_list_val());
      break;
    case ValueType::kBoolList:
      if (il) {
        auto* l = out->mutable_bool_list_val();
        for (int64_t x : *il) l->add_val(x != 0);
      }
      break;
    case ValueType::kFloatList:
      if (dl) {
        auto* l = out->mutable_float_list_val();
        for (double x : *dl) l->add_val(static_cast<float>(x));
      }
      break;
    case ValueType::kDoubleList:
      if (dl) FillList(*dl, out->mutable_double_list_val());
      break;
    case ValueType::kStringList:
      if (sl) FillList(*sl, out->mutable_string_list_val());
      break;
    case ValueType::kBytesList:
      if (sl) FillList(*sl, out->mutable_bytes_list_val());
      break;
    default:
      break;
  }
}

quiver::v1::Value ToProto(const Value& v) {
  quiver::v1::Value out;
  ToProto(v, &out);
  return out;
}

absl::StatusOr<Value> FromProto(const quiver::v1::Value& v, ValueType type) {
  if (!IsValidType(type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid declared type ", static_cast<int>(type)));
  }
  if (v.val_case() == PV::VAL_NOT_SET) return Value::Null(type);
  if (v.val_case() != CaseOf(type)) {
    return absl::InvalidArgumentError(absl::StrCat("wire value field ", static_cast<int>(v.val_case()),
                                                   " does not match declared type ",
                                                   TypeName(type)));
  }
  Value out{type, std::monostate{}};
  switch (v.val_case()) {
    case PV::kInt32Val:
      out.data = int64_t{v.int32_val()};
      break;
    case PV::kInt64Val:
      out.data = int64_t{v.int64_val()};
      break;
    case PV::kUnixTimestampVal:
      out.data = int64_t{v.unix_timestamp_val()};
      break;
    case PV::kFloatVal:
      out.data = double{v.float_val()};
      break;
    case PV::kDoubleVal:
      out.data = v.double_val();
      break;
    case PV::kBoolVal:
      out.data = v.bool_val();
      break;
    case PV::kStringVal:
      out.data = v.string_val();
      break;
    case PV::kBytesVal:
      out.data = v.bytes_val();
      break;
    case PV::kInt32ListVal:
      out.data = ReadList<int64_t>(v.int32_list_val());
      break;
    case PV::kInt64ListVal:
      out.data = ReadList<int64_t>(v.int64_list_val());
      break;
    case PV::kUnixTimestampListVal:
      out.data = ReadList<int64_t>(v.unix_timestamp_list_val());
      break;
    case PV::kBoolListVal:
      out.data = ReadList<int64_t>(v.bool_list_val());
      break;
    case PV::kFloatListVal:
      out.data = ReadList<double>(v.float_list_val());
      break;
    case PV::kDoubleListVal:
      out.data = ReadList<double>(v.double_list_val());
      break;
    case PV::kStringListVal:
      out.data = ReadList<std::string>(v.string_list_val());
      break;
    case PV::kBytesListVal:
      out.data = ReadList<std::string>(v.bytes_list_val());
      break;
    default:
      return absl::InvalidArgumentError("unknown wire value field");
  }
  // Wire widths already bound INT32/FLOAT; CheckValue keeps one rule for all.
  if (absl::Status s = CheckValue(out); !s.ok()) return s;
  return out;
}

}  // namespace quiver::client
