#include "quiver/keys/entity_key.h"

#include <xxhash.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "fixed.h"

namespace quiver {
using internal::GetFixed;
using internal::PutFixed;

absl::StatusOr<std::string> EncodeEntityKey(std::vector<KeyPart> parts) {
  if (parts.empty()) return absl::InvalidArgumentError("entity key has no join keys");
  if (parts.size() > 255) return absl::InvalidArgumentError("entity key has too many join keys");
  std::sort(parts.begin(), parts.end(),
            [](const KeyPart& a, const KeyPart& b) { return a.join_key < b.join_key; });
  std::string out;
  out.push_back(static_cast<char>(parts.size()));
  for (size_t i = 0; i < parts.size(); ++i) {
    const KeyPart& p = parts[i];
    if (p.join_key.empty() || p.join_key.size() > kMaxJoinKeyNameBytes) {
      return absl::InvalidArgumentError("join key name is empty or too long");
    }
    if (i > 0 && parts[i - 1].join_key == p.join_key) {
      return absl::InvalidArgumentError(absl::StrCat("join key '", p.join_key, "' repeated"));
    }
    if (p.value.is_null()) {
      return absl::InvalidArgumentError(absl::StrCat("join key '", p.join_key, "' is null"));
    }
    if (IsList(p.value.type)) {
      return absl::InvalidArgumentError(
          absl::StrCat("join key '", p.join_key, "' must be a scalar"));
    }
    if (auto s = CheckValue(p.value); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("join key '", p.join_key, "': ", s.message()));
    }
    PutFixed<uint16_t>(static_cast<uint16_t>(p.join_key.size()), &out);
    out.append(p.join_key);
    out.push_back(static_cast<char>(p.value.type));
    std::string payload;
    AppendPayload(p.value, &payload);
    PutFixed<uint32_t>(static_cast<uint32_t>(payload.size()), &out);
    out.append(payload);
    if (out.size() > kMaxEntityKeyBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("entity key longer than ", kMaxEntityKeyBytes, " bytes"));
    }
  }
  return out;
}

absl::StatusOr<std::vector<KeyPart>> DecodeEntityKey(std::string_view in) {
  auto bad = [] { return absl::InvalidArgumentError("malformed entity key"); };
  uint8_t n;
  if (!GetFixed(&in, &n) || n == 0) return bad();
  std::vector<KeyPart> parts;
  for (uint8_t i = 0; i < n; ++i) {
    uint16_t name_len;
    if (!GetFixed(&in, &name_len) || in.size() < name_len) return bad();
    KeyPart p;
    p.join_key = std::string(in.substr(0, name_len));
    in.remove_prefix(name_len);
    uint8_t type;
    uint32_t len;
    if (!GetFixed(&in, &type) || !GetFixed(&in, &len) || in.size() < len) return bad();
    const auto t = static_cast<ValueType>(type);
    if (!IsValidType(t) || IsList(t)) return bad();
    auto v = DecodePayload(t, in.substr(0, len));
    if (!v.ok()) return bad();
    in.remove_prefix(len);
    p.value = std::move(*v);
    parts.push_back(std::move(p));
  }
  if (!in.empty()) return bad();
  return parts;
}

uint64_t EntityKeyToken(std::string_view serialized_key) {
  return XXH3_64bits(serialized_key.data(), serialized_key.size());
}

int Log2PartitionCount(uint32_t q) {
  if (q == 0 || (q & (q - 1)) != 0 || q > (1u << 31)) return -1;
  int bits = 0;
  while ((1u << bits) < q) ++bits;
  return bits;
}

}  // namespace quiver
