// Conversions between quiver::Value (quiver/keys/value.h) and the wire's
// quiver.v1.Value, and between ValueType enums. The only place the two value
// representations meet.
//
// Thread-safety: pure functions.
#ifndef QUIVER_CLIENT_CONVERT_H_
#define QUIVER_CLIENT_CONVERT_H_

#include "absl/status/statusor.h"
#include "quiver.pb.h"
#include "quiver/keys/value.h"

namespace quiver::client {

inline quiver::v1::ValueType ToProtoType(ValueType t) {
  return static_cast<quiver::v1::ValueType>(static_cast<int>(t));
}
inline ValueType FromProtoType(quiver::v1::ValueType t) {
  return static_cast<ValueType>(static_cast<int>(t));
}

// A null value becomes a Value with no field set.
void ToProto(const Value& v, quiver::v1::Value* out);
quiver::v1::Value ToProto(const Value& v);

// Reads a wire value declared as `type`. No field set is null.
// Errors: kInvalidArgument when the set field does not match `type` or the
// value does not fit it (e.g. an INT32 out of range).
absl::StatusOr<Value> FromProto(const quiver::v1::Value& v, ValueType type);

}  // namespace quiver::client

#endif  // QUIVER_CLIENT_CONVERT_H_
