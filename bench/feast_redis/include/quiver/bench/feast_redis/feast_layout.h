// Feast's Redis online store layout, reproduced byte for byte so that Quiver is
// compared with what Feast really stores and reads (feast-dev/feast:
// sdk/python/feast/infra/online_stores/redis.py and helpers.py,
// infra/key_encoding_utils.py, go/internal/feast/onlinestore/redisonlinestore.go):
//
//   Redis key   = serialize_entity_key(EntityKey, version 3) ++ project (UTF-8)
//   hash field  = _mmh3("<view>:<feature>"): MurmurHash3_x86_32, seed 0, as 4
//                 little-endian bytes  ->  serialized feast.types.Value
//   hash field  = "_ts:<view>"  ->  serialized google.protobuf.Timestamp of the
//                 row's event time, whole seconds (Feast writes `seconds` only)
//
// serialize_entity_key v3: u32 LE count of join keys; per join key (sorted by
// name) u32 LE ValueType.STRING (2), u32 LE name length, name bytes; then per
// value u32 LE value type (INT64 = 4), u32 LE byte length, the bytes (INT64: 8
// bytes LE). Only single INT64 join keys are needed here.
//
// Thread-safety: pure functions.
#ifndef QUIVER_BENCH_FEAST_REDIS_FEAST_LAYOUT_H_
#define QUIVER_BENCH_FEAST_REDIS_FEAST_LAYOUT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "quiver/keys/value.h"

namespace quiver::bench::feast {

// MurmurHash3_x86_32 (Austin Appleby's reference; Python's mmh3.hash with
// signed=False, Go's spaolacci/murmur3 Sum32).
uint32_t Murmur3_32(std::string_view data, uint32_t seed = 0);

// The 4-byte hash field of feature `view`:`feature` (helpers._mmh3).
std::string FeatureField(std::string_view view, std::string_view feature);

// "_ts:<view>".
std::string TimestampField(std::string_view view);

// Appends serialize_entity_key(v3) of {join_key: INT64 value} (see above).
void AppendEntityKeyV3(std::string_view join_key, int64_t value, std::string* out);

// The Redis key of an entity: AppendEntityKeyV3 then the project name.
std::string RedisKey(std::string_view project, std::string_view join_key, int64_t value);

// Appends `v` as a serialized feast.types.Value, the way Feast's
// python_values_to_proto_values fills it: INT32 -> int32_val, INT64 ->
// int64_val, FLOAT -> float_val, DOUBLE -> double_val, BOOL -> bool_val,
// STRING -> string_val, BYTES -> bytes_val, UNIX_TIMESTAMP -> unix_timestamp_val
// (unit: seconds, µs truncated toward zero), lists -> *_list_val; a null value
// is the empty message (no field set), which serializes to zero bytes.
// Errors: kInvalidArgument for an invalid type or a value not of its type.
absl::Status AppendValueProto(const Value& v, std::string* out);

// Appends a serialized google.protobuf.Timestamp{seconds} (Feast: ts.seconds =
// int(event_time.timestamp())). unit: seconds since the epoch.
void AppendTimestampProto(int64_t seconds, std::string* out);

}  // namespace quiver::bench::feast

#endif  // QUIVER_BENCH_FEAST_REDIS_FEAST_LAYOUT_H_
