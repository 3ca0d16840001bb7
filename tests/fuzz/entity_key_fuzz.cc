// Fuzz target: the entity-key codec (client/include/quiver/keys/entity_key.h)
// — the bytes every lookup and write carries as a key.
//
// Properties: DecodeEntityKey never crashes and yields non-null scalar parts;
// a decoded key re-encodes (EncodeEntityKey) unless the decoder accepted a
// key the encoder refuses (empty or over-long names, duplicates, too long);
// an encoding decodes to the same parts, sorted, and re-encodes to itself
// (canonical form); a key that is already canonical (names strictly
// ascending) re-encodes to exactly the input bytes, except for FLOAT parts
// holding a signalling NaN (floats are held as doubles); partitioning any
// bytes stays in range.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "quiver/keys/entity_key.h"

namespace quiver::fuzz {
namespace {

bool SameParts(const std::vector<KeyPart>& a, const std::vector<KeyPart>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].join_key != b[i].join_key || !SameValue(a[i].value, b[i].value)) return false;
  }
  return true;
}

}  // namespace
}  // namespace quiver::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quiver;
  using namespace quiver::fuzz;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  for (uint32_t q : {1u, 16u, 4096u, 1u << 31}) {
    FUZZ_CHECK(PartitionOf(in, q) < q, "partition out of range for q=%u", q);
  }
  auto parts = DecodeEntityKey(in);
  if (!parts.ok()) {
    FUZZ_CHECK(parts.status().code() == absl::StatusCode::kInvalidArgument, "%s",
               parts.status().ToString().c_str());
    return 0;
  }
  FUZZ_CHECK(!parts->empty(), "decoded a key of no parts");
  bool canonical = true;
  for (size_t i = 0; i < parts->size(); ++i) {
    const KeyPart& p = (*parts)[i];
    FUZZ_CHECK(!p.value.is_null() && !IsList(p.value.type) && IsValidType(p.value.type),
               "part %zu: null, list or invalid value", i);
    if (i > 0 && !((*parts)[i - 1].join_key < p.join_key)) canonical = false;
    if (p.join_key.empty() || p.join_key.size() > kMaxJoinKeyNameBytes) canonical = false;
    if (!CheckValue(p.value).ok()) canonical = false;
  }
  if (in.size() > kMaxEntityKeyBytes) canonical = false;
  auto encoded = EncodeEntityKey(*parts);
  if (!encoded.ok()) {
    FUZZ_CHECK(encoded.status().code() == absl::StatusCode::kInvalidArgument, "%s",
               encoded.status().ToString().c_str());
    FUZZ_CHECK(!canonical, "a canonical key does not re-encode: %s",
               encoded.status().ToString().c_str());
    return 0;
  }
  FUZZ_CHECK(encoded->size() <= kMaxEntityKeyBytes, "encoded key of %zu bytes", encoded->size());
  auto decoded = DecodeEntityKey(*encoded);
  FUZZ_CHECK(decoded.ok(), "an encoded key does not decode: %s", decoded.status().ToString().c_str());
  std::vector<KeyPart> sorted = *parts;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const KeyPart& a, const KeyPart& b) { return a.join_key < b.join_key; });
  FUZZ_CHECK(SameParts(*decoded, sorted), "decode(encode(parts)) != sorted parts");
  auto twice = EncodeEntityKey(*decoded);
  FUZZ_CHECK(twice.ok() && *twice == *encoded, "encoding is not canonical");
  if (canonical) {
    bool has_float = false;
    for (const KeyPart& p : *parts) has_float |= p.value.type == ValueType::kFloat;
    FUZZ_CHECK(has_float || *encoded == in, "a canonical key re-encodes to other bytes");
  }
  return 0;
}
