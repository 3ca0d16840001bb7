// Canonical entity keys and partitioning: the rules that let the client, the
// node and the materializer agree on where a row lives.
//
// Serialized entity key (version 1), for join keys sorted by name (Feast sorts
// join keys the same way before serializing):
//   u8  part count
//   per part: u16 name length, name bytes, u8 ValueType, u32 payload length,
//             payload (AppendPayload of value.h)
// All integers little-endian. Null join-key values are rejected.
//
// Partitioning (docs/architecture.md): token = XXH3_64bits(serialized key);
// partition = token >> (64 - log2 Q), Q a power of two (default 4096).
//
// Thread-safety: pure functions.
#ifndef QUIVER_KEYS_ENTITY_KEY_H_
#define QUIVER_KEYS_ENTITY_KEY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver/keys/value.h"

namespace quiver {

// Upper bounds every process enforces on keys (bytes).
inline constexpr size_t kMaxJoinKeyNameBytes = 256;
inline constexpr size_t kMaxEntityKeyBytes = 4096;

struct KeyPart {
  std::string join_key;
  Value value;  // scalar, non-null
};

// Serializes `parts` canonically (sorted by join key name; input order does not
// matter). Errors: kInvalidArgument for no parts, duplicate or empty join-key
// names, a null or list value, or a key longer than kMaxEntityKeyBytes.
absl::StatusOr<std::string> EncodeEntityKey(std::vector<KeyPart> parts);

// Inverse of EncodeEntityKey. Errors: kInvalidArgument for a malformed key.
absl::StatusOr<std::vector<KeyPart>> DecodeEntityKey(std::string_view key);

// XXH3_64bits of the serialized key.
uint64_t EntityKeyToken(std::string_view serialized_key);

// log2 of a power of two; returns -1 when `q` is not a power of two in [1, 2^31].
int Log2PartitionCount(uint32_t q);

// The partition of `token` among `num_partitions` (a power of two, >= 1).
inline uint32_t PartitionOfToken(uint64_t token, uint32_t num_partitions) {
  const int bits = Log2PartitionCount(num_partitions);
  if (bits <= 0) return 0;
  return static_cast<uint32_t>(token >> (64 - bits));
}

inline uint32_t PartitionOf(std::string_view serialized_key, uint32_t num_partitions) {
  return PartitionOfToken(EntityKeyToken(serialized_key), num_partitions);
}

}  // namespace quiver

#endif  // QUIVER_KEYS_ENTITY_KEY_H_
