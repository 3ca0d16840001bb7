// Quiver's value model: the feature and join-key types of the registry and a
// typed, nullable value. This is the one definition every part links (client,
// storage, node, coordinator), so type rules cannot drift apart.
//
// Type rules follow Feast's ValueType set: INT32, INT64, FLOAT, DOUBLE, BOOL,
// STRING, BYTES, UNIX_TIMESTAMP and a LIST<T> of each. Numeric values are held
// widened in memory (INT32 as int64_t, FLOAT as double); the declared type
// decides the encoded width, and narrowing that would lose information is an
// error (see CheckFits), never a silent cast.
//
// Thread-safety: plain value types; const methods may be called concurrently.
#ifndef QUIVER_KEYS_VALUE_H_
#define QUIVER_KEYS_VALUE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace quiver {

// Numbering matches proto/quiver.proto's ValueType; a list type is its element
// type | kListBit.
enum class ValueType : uint8_t {
  kInvalid = 0,
  kInt32 = 1,
  kInt64 = 2,
  kFloat = 3,
  kDouble = 4,
  kBool = 5,
  kString = 6,
  kBytes = 7,
  kUnixTimestamp = 8,  // unit: microseconds since the Unix epoch, UTC
  kInt32List = 17,
  kInt64List = 18,
  kFloatList = 19,
  kDoubleList = 20,
  kBoolList = 21,
  kStringList = 22,
  kBytesList = 23,
  kUnixTimestampList = 24,
};

inline constexpr uint8_t kListBit = 0x10;

inline bool IsList(ValueType t) { return (static_cast<uint8_t>(t) & kListBit) != 0; }
// The element type of a list type; a scalar type is returned as is.
inline ValueType ElementType(ValueType t) {
  return static_cast<ValueType>(static_cast<uint8_t>(t) & ~kListBit);
}
inline ValueType ListOf(ValueType element) {
  return static_cast<ValueType>(static_cast<uint8_t>(element) | kListBit);
}
bool IsValidType(ValueType t);

// "INT64", "LIST<FLOAT>", ... as written in feature repositories.
std::string TypeName(ValueType t);
// Parses the names TypeName produces (case-insensitive, spaces ignored).
// Errors: kInvalidArgument naming the unknown type.
absl::StatusOr<ValueType> ParseTypeName(std::string_view name);

// A typed, nullable value. `type` is the declared type; `data` holds:
//   null                      -> std::monostate
//   INT32, INT64, UNIX_TS     -> int64_t
//   FLOAT, DOUBLE             -> double
//   BOOL                      -> bool
//   STRING, BYTES             -> std::string
//   INT32/INT64/BOOL/UNIX_TS lists -> std::vector<int64_t> (bools as 0/1)
//   FLOAT/DOUBLE lists        -> std::vector<double>
//   STRING/BYTES lists        -> std::vector<std::string>
struct Value {
  using Data = std::variant<std::monostate, int64_t, double, bool, std::string,
                            std::vector<int64_t>, std::vector<double>,
                            std::vector<std::string>>;
  ValueType type = ValueType::kInvalid;
  Data data;

  bool is_null() const { return std::holds_alternative<std::monostate>(data); }

  static Value Null(ValueType t) { return Value{t, std::monostate{}}; }
  static Value Int32(int32_t v) { return Value{ValueType::kInt32, int64_t{v}}; }
  static Value Int64(int64_t v) { return Value{ValueType::kInt64, v}; }
  static Value Float(float v) { return Value{ValueType::kFloat, double{v}}; }
  static Value Double(double v) { return Value{ValueType::kDouble, v}; }
  static Value Bool(bool v) { return Value{ValueType::kBool, v}; }
  static Value String(std::string v) { return Value{ValueType::kString, std::move(v)}; }
  static Value Bytes(std::string v) { return Value{ValueType::kBytes, std::move(v)}; }
  // unit: microseconds since the Unix epoch.
  static Value UnixTimestamp(int64_t us) { return Value{ValueType::kUnixTimestamp, us}; }

  friend bool operator==(const Value& a, const Value& b) {
    return a.type == b.type && a.data == b.data;
  }
};

// Checks that `v` is well-formed for its own type: the variant alternative
// matches `v.type`, INT32 values fit in 32 bits, FLOAT values are representable
// as float (finite doubles out of float range are rejected; NaN and ±inf pass).
// Errors: kInvalidArgument describing the mismatch.
absl::Status CheckValue(const Value& v);

// Appends the canonical byte encoding of a non-null value's payload (no type
// tag, no length): fixed-width little-endian numbers at the declared width,
// raw bytes for STRING/BYTES, and for lists a u32 count then each element
// (strings u32-length-prefixed). Used by entity keys and by the row codec.
void AppendPayload(const Value& v, std::string* out);

// Bytes of the payload of a non-null fixed-width scalar: BOOL 1, INT32 and
// FLOAT 4, INT64, DOUBLE and UNIX_TIMESTAMP 8; 0 for STRING, BYTES and lists,
// whose payload length varies.
size_t FixedPayloadBytes(ValueType t);

// Decodes a payload written by AppendPayload for type `t`.
// Errors: kDataLoss if `bytes` is truncated or has trailing garbage.
absl::StatusOr<Value> DecodePayload(ValueType t, std::string_view bytes);

// Checks that `bytes` is exactly what AppendPayload writes for some valid
// value of `t` (the declared width for fixed scalars, 0 or 1 for BOOL, an
// element count that matches the bytes for lists), without allocating: a
// payload that passes decodes with DecodePayload into a value that passes
// CheckValue, and re-encodes to the same bytes.
// Errors: kDataLoss naming the type, as DecodePayload.
absl::Status CheckPayload(ValueType t, std::string_view bytes);

// Parses text (as found in a CSV cell) into a value of scalar type `t`.
// Empty text is null. UNIX_TIMESTAMP accepts integer microseconds or RFC 3339.
// Errors: kInvalidArgument naming the text and the type.
absl::StatusOr<Value> ParseScalar(ValueType t, std::string_view text);

// Appends `v` as JSON (null, number, true/false, "string", base64 for BYTES,
// RFC 3339 for UNIX_TIMESTAMP, arrays for lists).
void AppendJson(const Value& v, std::string* out);

// Formats microseconds since the epoch as RFC 3339 UTC ("2026-11-20T13:05:00Z",
// with a fractional part only when it is not zero).
std::string FormatTimestamp(int64_t us);
// Parses ISO-8601 / RFC 3339 ("2026-11-20", "2026-11-20T13:05:00",
// "2026-11-20T13:05:00.5Z", "...+02:00"); no zone means UTC.
// Errors: kInvalidArgument.
absl::StatusOr<int64_t> ParseTimestamp(std::string_view text);

}  // namespace quiver

#endif  // QUIVER_KEYS_VALUE_H_
