// Fuzz target: a registry as the coordinator receives it over gRPC (quiverctl
// apply / plan send a serialized quiver.v1.Registry): protobuf parsing, then
// ValidateRegistry (coordinator/src/repo_validate.cc: names, references,
// types, on-demand expressions, permission patterns).
//
// Properties: no crash; a refusal is kInvalidArgument; a registry the
// coordinator accepts must also be accepted by every client
// (client::RegistryIndex::Build), its on-demand views stored online match
// StoredOnDemandView, and it diffs against itself as all "unchanged".
#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "quiver/client/registry_index.h"
#include "quiver/coordinator/repo.h"

// Protobuf logs each string field that is not UTF-8 as it parses or
// serializes; thousands of lines slow the fuzzer and bury its reports (the
// properties below catch what matters). FUZZ_VERBOSE keeps them.
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  if (!quiver::fuzz::Verbose()) google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quiver;
  quiver::v1::Registry registry;
  if (!registry.ParseFromArray(data, static_cast<int>(size))) return 0;
  const absl::Status s = coordinator::ValidateRegistry(registry);
  FUZZ_LOG("ValidateRegistry: %s\n", s.ToString().c_str());
  if (!s.ok()) {
    FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument, "%s", s.ToString().c_str());
    return 0;
  }
  auto index = client::RegistryIndex::Build(registry);
  FUZZ_CHECK(index.ok(), "the coordinator accepts a registry clients refuse: %s",
             index.status().ToString().c_str());
  for (const auto& odfv : registry.on_demand_feature_views()) {
    if (!odfv.write_to_online_store()) continue;
    auto stored = coordinator::StoredOnDemandView(registry, odfv);
    FUZZ_CHECK(stored.ok(), "on-demand view %s: %s", odfv.name().c_str(),
               stored.status().ToString().c_str());
  }
  for (const auto& change : coordinator::DiffRegistry(registry, registry)) {
    FUZZ_CHECK(change.action() == "unchanged", "%s %s is %s against itself", change.kind().c_str(),
               change.name().c_str(), change.action().c_str());
  }
  return 0;
}
