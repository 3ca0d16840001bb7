// Shared pieces of the fuzz targets (tests/fuzz/README.md): an abort-on-failure
// check that works in release builds, value comparison, the declared-types
// prefix of the codec targets, and a little-endian frame writer.
//
// Thread-safety: pure functions.
#ifndef QUIVER_TESTS_FUZZ_FUZZ_UTIL_H_
#define QUIVER_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/keys/value.h"

// A failed property is a crash for libFuzzer (abort) and for the replay
// ctest; assert() would vanish under NDEBUG.
#define FUZZ_CHECK(cond, ...)                                                        \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                             \
      std::fprintf(stderr, "\n");                                                    \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

namespace quiver::fuzz {

// FUZZ_VERBOSE=1 makes targets print what they decided about each input
// (for writing seeds: is this one accepted?).
inline bool Verbose() {
  static const bool verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
  return verbose;
}
#define FUZZ_LOG(...)                                                                 \
  do {                                                                               \
    if (::quiver::fuzz::Verbose()) std::fprintf(stderr, __VA_ARGS__);                \
  } while (0)

// The 16 valid value types; a fuzz byte picks one as kValidTypes[b % 16].
inline constexpr ValueType kValidTypes[16] = {
    ValueType::kInt32,         ValueType::kInt64,         ValueType::kFloat,
    ValueType::kDouble,        ValueType::kBool,          ValueType::kString,
    ValueType::kBytes,         ValueType::kUnixTimestamp, ValueType::kInt32List,
    ValueType::kInt64List,     ValueType::kFloatList,     ValueType::kDoubleList,
    ValueType::kBoolList,      ValueType::kStringList,    ValueType::kBytesList,
    ValueType::kUnixTimestampList};

// Reads a "declared types" prefix: byte 0 gives the count (mod 8), then one
// byte per type. Consumes what it reads; a short input gives fewer types.
inline std::vector<ValueType> TakeTypes(std::string_view* in) {
  std::vector<ValueType> types;
  if (in->empty()) return types;
  const size_t n = static_cast<uint8_t>(in->front()) % 8;
  in->remove_prefix(1);
  for (size_t i = 0; i < n && !in->empty(); ++i) {
    types.push_back(kValidTypes[static_cast<uint8_t>(in->front()) % 16]);
    in->remove_prefix(1);
  }
  return types;
}

// Value equality that treats every NaN as equal to every NaN (Value's ==
// compares doubles with ==, so NaN != NaN).
inline bool SameDouble(double a, double b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof(a)) == 0 || a == b;
}
inline bool SameValue(const Value& a, const Value& b) {
  if (a.type != b.type || a.data.index() != b.data.index()) return false;
  if (const auto* x = std::get_if<double>(&a.data)) return SameDouble(*x, std::get<double>(b.data));
  if (const auto* xs = std::get_if<std::vector<double>>(&a.data)) {
    const auto& ys = std::get<std::vector<double>>(b.data);
    if (xs->size() != ys.size()) return false;
    for (size_t i = 0; i < xs->size(); ++i) {
      if (!SameDouble((*xs)[i], ys[i])) return false;
    }
    return true;
  }
  return a.data == b.data;
}

inline void PutU32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A lean lookup frame (node/include/quiver/node/lookup_server.h): u32 body
// length | u32 id | u8 kind or status | body.
inline std::string LeanFrame(uint32_t id, uint8_t kind, std::string_view body) {
  std::string out;
  PutU32(static_cast<uint32_t>(body.size()), &out);
  PutU32(id, &out);
  out.push_back(static_cast<char>(kind));
  out.append(body);
  return out;
}

}  // namespace quiver::fuzz

#endif  // QUIVER_TESTS_FUZZ_FUZZ_UTIL_H_
