// Name lookups over a registry's repeated objects (entities, sources, feature
// views, feature services), shared by the coordinator's sources.
#ifndef QUIVER_COORDINATOR_SRC_REGISTRY_LOOKUP_H_
#define QUIVER_COORDINATOR_SRC_REGISTRY_LOOKUP_H_

#include <string>

#include "google/protobuf/repeated_ptr_field.h"

namespace quiver::coordinator {

// The object named `name`, or nullptr. Linear: registries hold tens of objects.
template <typename T>
const T* ByName(const google::protobuf::RepeatedPtrField<T>& objects, const std::string& name) {
  for (const auto& o : objects) {
    if (o.name() == name) return &o;
  }
  return nullptr;
}

}  // namespace quiver::coordinator

#endif  // QUIVER_COORDINATOR_SRC_REGISTRY_LOOKUP_H_
