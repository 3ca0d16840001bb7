// Shared fixtures of the node's unit tests: a temp dir and an in-process
// registry / cluster view.
#ifndef QUIVER_TESTS_UNIT_NODE_NODE_TEST_UTIL_H_
#define QUIVER_TESTS_UNIT_NODE_NODE_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "quiver.pb.h"
#include "quiver/client/registry_index.h"
#include "quiver/node/request_handler.h"

namespace quiver::node::testing {

// A fresh directory under $TMPDIR, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "quiver-node-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::shared_ptr<const client::RegistryIndex> BuildIndex(const quiver::v1::Registry& r) {
  auto index = client::RegistryIndex::Build(r);
  if (!index.ok()) std::abort();
  return *index;
}

// A ClusterView over registries held in memory; Refresh() moves to `next` if set.
class FakeCluster final : public ClusterView {
 public:
  std::shared_ptr<const client::RegistryIndex> registry() const override { return current; }
  absl::Status Refresh() override {
    ++refreshes;
    if (next != nullptr) current = std::exchange(next, nullptr);
    return absl::OkStatus();
  }
  uint64_t epoch() const override { return epoch_value; }

  std::shared_ptr<const client::RegistryIndex> current;
  std::shared_ptr<const client::RegistryIndex> next;
  uint64_t epoch_value = 7;
  int refreshes = 0;
};

inline quiver::v1::FeatureSpec* AddFeature(quiver::v1::FeatureView* view, const std::string& name,
                                           quiver::v1::ValueType type) {
  auto* f = view->add_features();
  f->set_name(name);
  f->set_type(type);
  return f;
}

}  // namespace quiver::node::testing

#endif  // QUIVER_TESTS_UNIT_NODE_NODE_TEST_UTIL_H_
