#include <map>

#include "quiver/bench/feast_redis/reader.h"
#include "targets.h"

namespace quiver::bench {
namespace {

// One reader (connection + prepared HMGET fields) per workload.
class RedisTarget : public Target {
 public:
  absl::Status Add(const std::string& host, int port, const std::string& project,
                   const Workload& w) {
    std::vector<feast::FeastFeatureRef> refs;
    for (const client::ResolvedFeature& f : w.features) refs.push_back({f.view, f.feature, f.type});
    auto reader = std::make_unique<feast::FeastRedisReader>();
    if (absl::Status s = reader->Connect(host, port, project, std::move(refs)); !s.ok()) return s;
    readers_[w.name] = std::move(reader);
    return absl::OkStatus();
  }

  absl::Status Lookup(const Workload& w, std::span<const int64_t> entity_ids, Table* out) override {
    auto it = readers_.find(w.name);
    if (it == readers_.end()) return absl::NotFoundError("workload " + w.name + " not prepared");
    if (absl::Status s = it->second->Read(entity_ids, &result_); !s.ok()) return s;
    if (out == nullptr) return absl::OkStatus();
    out->assign(result_.rows, {});
    for (size_t r = 0; r < result_.rows; ++r) {
      for (size_t f = 0; f < result_.features; ++f) (*out)[r].push_back(result_.at(r, f));
    }
    return absl::OkStatus();
  }

 private:
  std::map<std::string, std::unique_ptr<feast::FeastRedisReader>> readers_;
  feast::FeastReadResult result_;  // reused: the reader keeps its buffers
};

}  // namespace

absl::StatusOr<std::unique_ptr<Target>> NewRedisTarget(const std::string& host, int port,
                                                       const std::string& project,
                                                       const std::vector<Workload>& workloads) {
  auto target = std::make_unique<RedisTarget>();
  for (const Workload& w : workloads) {
    if (absl::Status s = target->Add(host, port, project, w); !s.ok()) return s;
  }
  return std::unique_ptr<Target>(std::move(target));
}

}  // namespace quiver::bench
