#include "quiver/keys/value.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "fixed.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"

namespace quiver {
namespace {

using internal::GetFixed;
using internal::PutFixed;

void PutScalarInt(ValueType element, int64_t v, std::string* out) {
  switch (element) {
    case ValueType::kInt32:
      PutFixed<int32_t>(static_cast<int32_t>(v), out);
      break;
    case ValueType::kBool:
      out->push_back(v ? 1 : 0);
      break;
    default:
      PutFixed<int64_t>(v, out);
  }
}

void PutScalarDouble(ValueType element, double v, std::string* out) {
  if (element == ValueType::kFloat) {
    PutFixed<float>(static_cast<float>(v), out);
  } else {
    PutFixed<double>(v, out);
  }
}

bool GetScalarInt(ValueType element, std::string_view* in, int64_t* v) {
  switch (element) {
    case ValueType::kInt32: {
      int32_t x;
      if (!GetFixed(in, &x)) return false;
      *v = x;
      return true;
    }
    case ValueType::kBool: {
      uint8_t b;
      if (!GetFixed(in, &b) || b > 1) return false;
      *v = b;
      return true;
    }
    default:
      return GetFixed(in, v);
  }
}

bool GetScalarDouble(ValueType element, std::string_view* in, double* v) {
  if (element == ValueType::kFloat) {
    float f;
    if (!GetFixed(in, &f)) return false;
    *v = f;
    return true;
  }
  return GetFixed(in, v);
}

bool IsIntLike(ValueType e) {
  return e == ValueType::kInt32 || e == ValueType::kInt64 || e == ValueType::kUnixTimestamp ||
         e == ValueType::kBool;
}
bool IsFloatLike(ValueType e) { return e == ValueType::kFloat || e == ValueType::kDouble; }


absl::Status CheckInt(ValueType e, int64_t v) {
  if (e == ValueType::kInt32 &&
      (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("value ", v, " does not fit in INT32"));
  }
  if (e == ValueType::kBool && v != 0 && v != 1) {
    return absl::InvalidArgumentError(absl::StrCat("value ", v, " is not a BOOL"));
  }
  return absl::OkStatus();
}

absl::Status CheckDouble(ValueType e, double v) {
  if (e == ValueType::kFloat && std::isfinite(v) &&
      std::fabs(v) > static_cast<double>(std::numeric_limits<float>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("value ", v, " does not fit in FLOAT"));
  }
  return absl::OkStatus();
}

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out->append(buf);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void AppendJsonDouble(double d, std::string* out) {
  if (!std::isfinite(d)) {
    out->append("null");  // JSON has no NaN/inf
    return;
  }
  char buf[32];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  out->append(buf, ptr);
}

void AppendJsonScalarInt(ValueType e, int64_t v, std::string* out) {
  if (e == ValueType::kBool) {
    out->append(v ? "true" : "false");
  } else if (e == ValueType::kUnixTimestamp) {
    AppendJsonString(FormatTimestamp(v), out);
  } else {
    absl::StrAppend(out, v);
  }
}

void AppendJsonBytes(ValueType e, const std::string& s, std::string* out) {
  if (e == ValueType::kBytes) {
    AppendJsonString(absl::Base64Escape(s), out);
  } else {
    AppendJsonString(s, out);
  }
}

}  // namespace

bool IsValidType(ValueType t) {
  const uint8_t e = static_cast<uint8_t>(ElementType(t));
  const uint8_t raw = static_cast<uint8_t>(t);
  return e >= 1 && e <= 8 && (raw & ~(kListBit | 0x0F)) == 0;
}

std::string TypeName(ValueType t) {
  static const char* kNames[] = {"INVALID", "INT32", "INT64", "BOOL_UNUSED", "DOUBLE",
                                 "BOOL",    "STRING", "BYTES", "UNIX_TIMESTAMP"};
  if (!IsValidType(t)) return "INVALID";
  const ValueType e = ElementType(t);
  std::string name = e == ValueType::kFloat ? "FLOAT" : kNames[static_cast<uint8_t>(e)];
  return IsList(t) ? absl::StrCat("LIST<", name, ">") : name;
}

absl::StatusOr<ValueType> ParseTypeName(std::string_view name) {
  std::string n;
  for (char c : name) {
    if (!std::isspace(static_cast<unsigned char>(c))) n.push_back(absl::ascii_toupper(c));
  }
  bool list = false;
  std::string_view inner = n;
  if (inner.size() > 6 && inner.substr(0, 5) == "LIST<" && inner.back() == '>') {
    list = true;
    inner = inner.substr(5, inner.size() - 6);
  }
  static const std::pair<const char*, ValueType> kTable[] = {
      {"INT32", ValueType::kInt32},   {"INT64", ValueType::kInt64},
      {"FLOAT", ValueType::kFloat},   {"FLOAT32", ValueType::kFloat},
      {"DOUBLE", ValueType::kDouble}, {"FLOAT64", ValueType::kDouble},
      {"BOOL", ValueType::kBool},     {"STRING", ValueType::kString},
      {"BYTES", ValueType::kBytes},   {"UNIX_TIMESTAMP", ValueType::kUnixTimestamp}};
  for (const auto& [text, type] : kTable) {
    if (inner == text) return list ? ListOf(type) : type;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown type '", std::string(name),
      "' (expected INT32, INT64, FLOAT, DOUBLE, BOOL, STRING, BYTES, UNIX_TIMESTAMP or LIST<T>)"));
}

absl::Status CheckValue(const Value& v) {
  if (!IsValidType(v.type)) return absl::InvalidArgumentError("value has an invalid type");
  if (v.is_null()) return absl::OkStatus();
  const ValueType e = ElementType(v.type);
  auto mismatch = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("value does not hold a ", TypeName(v.type)));
  };
  if (!IsList(v.type)) {
    if (IsIntLike(e)) {
      if (e == ValueType::kBool) {
        if (!std::holds_alternative<bool>(v.data)) return mismatch();
        return absl::OkStatus();
      }
      if (!std::holds_alternative<int64_t>(v.data)) return mismatch();
      return CheckInt(e, std::get<int64_t>(v.data));
    }
    if (IsFloatLike(e)) {
      if (!std::holds_alternative<double>(v.data)) return mismatch();
      return CheckDouble(e, std::get<double>(v.data));
    }
    if (!std::holds_alternative<std::string>(v.data)) return mismatch();
    return absl::OkStatus();
  }
  if (IsIntLike(e)) {
    if (!std::holds_alternative<std::vector<int64_t>>(v.data)) return mismatch();
    for (int64_t x : std::get<std::vector<int64_t>>(v.data)) {
      if (auto s = CheckInt(e, x); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  if (IsFloatLike(e)) {
    if (!std::holds_alternative<std::vector<double>>(v.data)) return mismatch();
    for (double x : std::get<std::vector<double>>(v.data)) {
      if (auto s = CheckDouble(e, x); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  if (!std::holds_alternative<std::vector<std::string>>(v.data)) return mismatch();
  return absl::OkStatus();
}

void AppendPayload(const Value& v, std::string* out) {
  const ValueType e = ElementType(v.type);
  if (v.is_null()) return;
  if (!IsList(v.type)) {
    if (e == ValueType::kBool) {
      out->push_back(std::get<bool>(v.data) ? 1 : 0);
    } else if (IsIntLike(e)) {
      PutScalarInt(e, std::get<int64_t>(v.data), out);
    } else if (IsFloatLike(e)) {
      PutScalarDouble(e, std::get<double>(v.data), out);
    } else {
      out->append(std::get<std::string>(v.data));
    }
    return;
  }
  if (IsIntLike(e)) {
    const auto& xs = std::get<std::vector<int64_t>>(v.data);
    PutFixed<uint32_t>(static_cast<uint32_t>(xs.size()), out);
    for (int64_t x : xs) PutScalarInt(e, x, out);
  } else if (IsFloatLike(e)) {
    const auto& xs = std::get<std::vector<double>>(v.data);
    PutFixed<uint32_t>(static_cast<uint32_t>(xs.size()), out);
    for (double x : xs) PutScalarDouble(e, x, out);
  } else {
    const auto& xs = std::get<std::vector<std::string>>(v.data);
    PutFixed<uint32_t>(static_cast<uint32_t>(xs.size()), out);
    for (const auto& x : xs) {
      PutFixed<uint32_t>(static_cast<uint32_t>(x.size()), out);
      out->append(x);
    }
  }
}

size_t FixedPayloadBytes(ValueType t) {
  switch (t) {
    case ValueType::kInt32:
    case ValueType::kFloat:
      return 4;
    case ValueType::kInt64:
    case ValueType::kDouble:
    case ValueType::kUnixTimestamp:
      return 8;
    case ValueType::kBool:
      return 1;
    default:
      return 0;
  }
}

absl::StatusOr<Value> DecodePayload(ValueType t, std::string_view in) {
  if (!IsValidType(t)) return absl::DataLossError("stored value has an invalid type tag");
  const ValueType e = ElementType(t);
  auto truncated = [&] {
    return absl::DataLossError(absl::StrCat("corrupt ", TypeName(t), " payload"));
  };
  Value v{t, std::monostate{}};
  if (!IsList(t)) {
    if (e == ValueType::kBool) {
      int64_t x;
      if (!GetScalarInt(e, &in, &x)) return truncated();
      v.data = x != 0;
    } else if (IsIntLike(e)) {
      int64_t x;
      if (!GetScalarInt(e, &in, &x)) return truncated();
      v.data = x;
    } else if (IsFloatLike(e)) {
      double x;
      if (!GetScalarDouble(e, &in, &x)) return truncated();
      v.data = x;
    } else {
      v.data = std::string(in);
      in = {};
    }
    if (!in.empty()) return truncated();
    return v;
  }
  uint32_t n;
  if (!GetFixed(&in, &n)) return truncated();
  const size_t width = FixedPayloadBytes(e);
  if (width != 0 && in.size() != static_cast<size_t>(n) * width) return truncated();
  if (IsIntLike(e)) {
    std::vector<int64_t> xs(n);
    for (auto& x : xs) {
      if (!GetScalarInt(e, &in, &x)) return truncated();
    }
    v.data = std::move(xs);
  } else if (IsFloatLike(e)) {
    std::vector<double> xs(n);
    for (auto& x : xs) {
      if (!GetScalarDouble(e, &in, &x)) return truncated();
    }
    v.data = std::move(xs);
  } else {
    if (n > in.size() / 4) return truncated();
    std::vector<std::string> xs;
    xs.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t len;
      if (!GetFixed(&in, &len) || in.size() < len) return truncated();
      xs.emplace_back(in.substr(0, len));
      in.remove_prefix(len);
    }
    v.data = std::move(xs);
  }
  if (!in.empty()) return truncated();
  return v;
}

absl::Status CheckPayload(ValueType t, std::string_view in) {
  if (!IsValidType(t)) return absl::DataLossError("stored value has an invalid type tag");
  auto corrupt = [&] {
    return absl::DataLossError(absl::StrCat("corrupt ", TypeName(t), " payload"));
  };
  const ValueType e = ElementType(t);
  const size_t width = FixedPayloadBytes(e);
  auto bools_ok = [](std::string_view bytes) {
    for (char c : bytes) {
      if (static_cast<uint8_t>(c) > 1) return false;
    }
    return true;
  };
  if (!IsList(t)) {
    if (width == 0) return absl::OkStatus();  // STRING, BYTES: any bytes
    if (in.size() != width || (e == ValueType::kBool && !bools_ok(in))) return corrupt();
    return absl::OkStatus();
  }
  uint32_t n;
  if (!GetFixed(&in, &n)) return corrupt();
  if (width != 0) {
    if (in.size() != static_cast<size_t>(n) * width) return corrupt();
    if (e == ValueType::kBool && !bools_ok(in)) return corrupt();
    return absl::OkStatus();
  }
  if (n > in.size() / 4) return corrupt();
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t len;
    if (!GetFixed(&in, &len) || in.size() < len) return corrupt();
    in.remove_prefix(len);
  }
  if (!in.empty()) return corrupt();
  return absl::OkStatus();
}

absl::StatusOr<Value> ParseScalar(ValueType t, std::string_view text_view) {
  const std::string text(text_view);  // Debian's absl::string_view is not std::string_view
  if (IsList(t) || !IsValidType(t)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot parse text as ", TypeName(t)));
  }
  if (text.empty()) return Value::Null(t);
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a valid ", TypeName(t)));
  };
  switch (t) {
    case ValueType::kInt32: {
      int32_t x;
      if (!absl::SimpleAtoi(text, &x)) return bad();
      return Value::Int32(x);
    }
    case ValueType::kInt64: {
      int64_t x;
      if (!absl::SimpleAtoi(text, &x)) return bad();
      return Value::Int64(x);
    }
    case ValueType::kFloat: {
      // Parsed wide, so that a finite value beyond FLOAT's range is an error
      // (CheckDouble) rather than a silent infinity.
      double x;
      if (!absl::SimpleAtod(text, &x)) return bad();
      if (absl::Status st = CheckDouble(ValueType::kFloat, x); !st.ok()) return st;
      return Value::Float(static_cast<float>(x));
    }
    case ValueType::kDouble: {
      double x;
      if (!absl::SimpleAtod(text, &x)) return bad();
      return Value::Double(x);
    }
    case ValueType::kBool: {
      bool x;
      if (!absl::SimpleAtob(text, &x)) return bad();
      return Value::Bool(x);
    }
    case ValueType::kString:
      return Value::String(text);
    case ValueType::kBytes:
      return Value::Bytes(text);
    case ValueType::kUnixTimestamp: {
      int64_t x;
      if (absl::SimpleAtoi(text, &x)) return Value::UnixTimestamp(x);
      auto ts = ParseTimestamp(text);
      if (!ts.ok()) return bad();
      return Value::UnixTimestamp(*ts);
    }
    default:
      return bad();
  }
}

void AppendJson(const Value& v, std::string* out) {
  if (v.is_null()) {
    out->append("null");
    return;
  }
  const ValueType e = ElementType(v.type);
  if (!IsList(v.type)) {
    if (e == ValueType::kBool) {
      out->append(std::get<bool>(v.data) ? "true" : "false");
    } else if (IsIntLike(e)) {
      AppendJsonScalarInt(e, std::get<int64_t>(v.data), out);
    } else if (IsFloatLike(e)) {
      AppendJsonDouble(std::get<double>(v.data), out);
    } else {
      AppendJsonBytes(e, std::get<std::string>(v.data), out);
    }
    return;
  }
  out->push_back('[');
  bool first = true;
  auto sep = [&] {
    if (!first) out->push_back(',');
    first = false;
  };
  if (IsIntLike(e)) {
    for (int64_t x : std::get<std::vector<int64_t>>(v.data)) {
      sep();
      AppendJsonScalarInt(e, x, out);
    }
  } else if (IsFloatLike(e)) {
    for (double x : std::get<std::vector<double>>(v.data)) {
      sep();
      AppendJsonDouble(x, out);
    }
  } else {
    for (const auto& x : std::get<std::vector<std::string>>(v.data)) {
      sep();
      AppendJsonBytes(e, x, out);
    }
  }
  out->push_back(']');
}

std::string FormatTimestamp(int64_t us) {
  const absl::Time t = absl::FromUnixMicros(us);
  if (us % 1000000 == 0) return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<int64_t> ParseTimestamp(std::string_view text_view) {
  const std::string text(text_view);
  std::string s(absl::StripAsciiWhitespace(text));
  if (s.size() > 10 && s[10] == ' ') s[10] = 'T';  // "2026-11-20 13:05:00" as DuckDB prints
  static const char* kFormats[] = {"%Y-%m-%dT%H:%M:%E*S%Ez", "%Y-%m-%dT%H:%M:%E*SZ",
                                   "%Y-%m-%dT%H:%M:%E*S",    "%Y-%m-%dT%H:%M%Ez",
                                   "%Y-%m-%dT%H:%MZ",        "%Y-%m-%dT%H:%M",
                                   "%Y-%m-%d"};
  for (const char* f : kFormats) {
    absl::Time t;
    std::string err;
    if (absl::ParseTime(f, s, absl::UTCTimeZone(), &t, &err)) return absl::ToUnixMicros(t);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "'", text, "' is not an ISO-8601 time (e.g. 2026-11-20 or 2026-11-20T13:05:00Z)"));
}

}  // namespace quiver
