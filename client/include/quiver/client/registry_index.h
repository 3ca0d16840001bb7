// RegistryIndex: a read-only index over one registry version (proto
// quiver.v1.Registry) that answers the questions every process asks: which
// join keys key a view, where a feature sits in its view's schema, and what a
// list of feature references or a feature service expands to.
//
// Feature references follow Feast: "view:feature", or "view" for all of the
// view's features in schema order. A feature service expands to its
// references, in order.
//
// Thread-safety: immutable after Build; share it through shared_ptr<const>.
#ifndef QUIVER_CLIENT_REGISTRY_INDEX_H_
#define QUIVER_CLIENT_REGISTRY_INDEX_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quiver.pb.h"
#include "quiver/keys/entity_key.h"
#include "quiver/expr/on_demand.h"
#include "quiver/keys/value.h"

namespace quiver::client {

struct JoinKeySpec {
  std::string join_key;
  ValueType type = ValueType::kInvalid;
};

struct ViewInfo {
  const quiver::v1::FeatureView* view = nullptr;
  std::vector<JoinKeySpec> join_keys;  // sorted by join key name
  std::map<std::string, int> feature_index;  // name -> schema index
  std::vector<ValueType> feature_types;  // schema order
};

// One resolved feature reference.
struct ResolvedFeature {
  std::string ref;  // "view:feature"
  std::string view;
  std::string feature;
  int index = 0;  // schema index within the view
  ValueType type = ValueType::kInvalid;
  // Set for a feature of an on-demand feature view (`view` is its name):
  // computed after the fetch, not read from a node.
  const expr::OnDemandView* on_demand = nullptr;
};

class RegistryIndex {
 public:
  // Indexes `registry`. Errors: kInvalidArgument if a view names an unknown
  // entity or a feature type is invalid (a registry the coordinator accepted
  // never fails).
  static absl::StatusOr<std::shared_ptr<const RegistryIndex>> Build(quiver::v1::Registry registry);

  const quiver::v1::Registry& registry() const { return registry_; }
  uint64_t version() const { return registry_.version(); }

  // nullptr if unknown.
  const ViewInfo* FindView(const std::string& name) const;
  // The compiled on-demand feature view `name`; nullptr if unknown.
  const expr::OnDemandView* FindOnDemandView(const std::string& name) const;
  const quiver::v1::Entity* FindEntity(const std::string& name) const;

  // Expands references ("view:feature" or "view"; the view may be an
  // on-demand feature view) in order. An on-demand view with
  // write_to_online_store resolves to the feature view that stores it
  // (on_demand unset): it is read, not computed.
  // Errors: kNotFound naming the unknown view or feature; kInvalidArgument for
  // a malformed reference or a duplicate.
  absl::StatusOr<std::vector<ResolvedFeature>> Resolve(const std::vector<std::string>& refs) const;
  // Errors: kNotFound for an unknown service, else as Resolve.
  absl::StatusOr<std::vector<ResolvedFeature>> ResolveService(const std::string& service) const;
  // The service's features as ResolveService gives them, resolved once when
  // the index was built (the lookup path: no copy); nullptr for an unknown
  // service.
  const absl::StatusOr<std::vector<ResolvedFeature>>* FindService(const std::string& service) const;

  // Builds the serialized entity key of `view` from one entity row given as
  // (join key -> value); join keys not used by the view are ignored.
  // Errors: kInvalidArgument for a missing join key or a value of another type.
  absl::StatusOr<std::string> EntityKeyFor(const ViewInfo& view,
                                           const std::map<std::string, Value>& row) const;

 private:
  RegistryIndex() = default;
  quiver::v1::Registry registry_;
  std::map<std::string, ViewInfo> views_;
  std::map<std::string, expr::OnDemandView> on_demand_;
  std::map<std::string, const quiver::v1::Entity*> entities_;
  std::map<std::string, absl::StatusOr<std::vector<ResolvedFeature>>> services_;
};

}  // namespace quiver::client

#endif  // QUIVER_CLIENT_REGISTRY_INDEX_H_
