// Fixed-width little-endian integers and floats in byte strings: the building
// block of entity keys and value payloads (quiver::keys, private).
#ifndef QUIVER_CLIENT_SRC_FIXED_H_
#define QUIVER_CLIENT_SRC_FIXED_H_

#include <cstring>
#include <string>
#include <string_view>

namespace quiver::internal {

// Appends `v` as sizeof(T) bytes, little-endian (x86_64 and arm64 hosts).
template <typename T>
void PutFixed(T v, std::string* out) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}

// Reads sizeof(T) bytes from the front of `*in` and consumes them; false when
// fewer are left.
template <typename T>
bool GetFixed(std::string_view* in, T* v) {
  if (in->size() < sizeof(T)) return false;
  std::memcpy(v, in->data(), sizeof(T));
  in->remove_prefix(sizeof(T));
  return true;
}

}  // namespace quiver::internal

#endif  // QUIVER_CLIENT_SRC_FIXED_H_
