// Fuzz target: the feature repository loader (coordinator/include/quiver/
// coordinator/repo.h): the input is written as the one YAML file of a
// repository folder and loaded with LoadRepository (yaml-cpp, the object
// parsers, StoredOnDemandView, ValidateRegistry with its expression and
// permission checks).
//
// Properties: no crash and no exception escapes (LoadRepository converts
// yaml-cpp's errors to statuses); a refusal is kInvalidArgument (kNotFound
// cannot happen: the folder and its file exist); an accepted registry passes
// ValidateRegistry again, after a protobuf round trip too, builds the client's
// RegistryIndex (what every client does with it), and diffs against itself
// as all "unchanged".
#include <fcntl.h>
#include <unistd.h>

#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "fuzz_util.h"
#include "quiver/client/registry_index.h"
#include "quiver/coordinator/repo.h"

namespace quiver::fuzz {
namespace {

// One folder per process, removed at exit (run.sh points TMPDIR into the
// build directory, so a crashed run's folder stays there).
const std::string& RepoDir() {
  static const auto* dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "quiver-fuzz-repo-XXXXXX").string();
    FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    auto* d = new std::string(tmpl);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(RepoDir(), ec);
    });
    return d;
  }();
  return *dir;
}

void WriteFile(const std::string& path, const uint8_t* data, size_t size) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  FUZZ_CHECK(fd >= 0, "open %s", path.c_str());
  size_t done = 0;
  while (done < size) {
    const ssize_t n = write(fd, data + done, size - done);
    FUZZ_CHECK(n > 0, "write %s", path.c_str());
    done += static_cast<size_t>(n);
  }
  close(fd);
}

}  // namespace
}  // namespace quiver::fuzz

// Protobuf logs each string field that is not UTF-8 as it parses or
// serializes; thousands of lines slow the fuzzer and bury its reports (the
// properties below catch what matters). FUZZ_VERBOSE keeps them.
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  if (!quiver::fuzz::Verbose()) google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quiver;
  using namespace quiver::fuzz;
  const std::string& dir = RepoDir();
  WriteFile(dir + "/feature_store.yaml", data, size);
  auto registry = coordinator::LoadRepository(dir);
  FUZZ_LOG("LoadRepository: %s\n", registry.status().ToString().c_str());
  if (!registry.ok()) {
    FUZZ_CHECK(registry.status().code() == absl::StatusCode::kInvalidArgument, "%s",
               registry.status().ToString().c_str());
    return 0;
  }
  absl::Status s = coordinator::ValidateRegistry(*registry);
  FUZZ_CHECK(s.ok(), "a loaded registry fails validation: %s", s.ToString().c_str());
  quiver::v1::Registry copy;
  FUZZ_CHECK(copy.ParseFromString(registry->SerializeAsString()), "registry round trip");
  s = coordinator::ValidateRegistry(copy);
  FUZZ_CHECK(s.ok(), "a loaded registry fails validation after a round trip: %s", s.ToString().c_str());
  auto index = client::RegistryIndex::Build(*registry);
  FUZZ_CHECK(index.ok(), "a valid registry does not build a RegistryIndex: %s",
             index.status().ToString().c_str());
  for (const auto& change : coordinator::DiffRegistry(*registry, copy)) {
    FUZZ_CHECK(change.action() == "unchanged", "%s %s is %s against itself", change.kind().c_str(),
               change.name().c_str(), change.action().c_str());
  }
  return 0;
}
