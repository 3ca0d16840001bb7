// In-process fakes of the coordinator and of data nodes, served by real gRPC
// servers on 127.0.0.1:0, for tests of anything that talks to a cluster
// (quiver::client::Client, the materializer, quiverctl).
//
// FakeNode keeps rows in memory per view, applies last-writer-wins by
// (event_ts, created_ts) like the real store, answers Get by feature name
// using the registry it was given, and records every key it was asked for.
// Failure injection: Shutdown() (connection refused), SetHang(true) (calls
// block until cancelled or released), FailWith(code) (every call errors).
//
// Thread-safety: every method may be called from the test thread while the
// servers run.
#ifndef QUIVER_TESTS_UNIT_CLIENT_FAKE_CLUSTER_H_
#define QUIVER_TESTS_UNIT_CLIENT_FAKE_CLUSTER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "quiver.grpc.pb.h"

namespace quiver::testing {

class FakeCoordinator {
 public:
  // Starts serving on 127.0.0.1 at a free port.
  FakeCoordinator();
  ~FakeCoordinator();

  const std::string& address() const { return address_; }
  void SetMap(quiver::v1::ClusterMap map);
  void SetRegistry(quiver::v1::Registry registry);
  quiver::v1::ClusterMap map() const;
  int map_calls() const { return map_calls_.load(); }
  void Shutdown();
  // Serves again on the same address (a restarted coordinator).
  void Restart();

 private:
  class Service;
  mutable absl::Mutex mu_;
  quiver::v1::ClusterMap map_ ABSL_GUARDED_BY(mu_);
  quiver::v1::Registry registry_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> map_calls_{0};
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

class FakeNode {
 public:
  // Starts serving on 127.0.0.1 at a free port.
  FakeNode(uint32_t id, quiver::v1::Registry registry);
  ~FakeNode();

  uint32_t id() const { return id_; }
  const std::string& address() const { return address_; }
  void Shutdown();
  // Serves again on the same address, with the rows it held.
  void Restart();

  void SetEpoch(uint64_t epoch) { epoch_.store(epoch); }
  void SetHang(bool hang) { hang_.store(hang); }
  // OK (the default) serves normally.
  void FailWith(grpc::StatusCode code) { fail_code_.store(static_cast<int>(code)); }
  // unit: microseconds since the epoch; TTL is judged against it (0: real clock).
  void SetNowUs(int64_t now_us) { now_us_.store(now_us); }

  // Stores a row as a Write would (LWW).
  void Put(const std::string& view, const quiver::v1::WriteRow& row);
  std::optional<quiver::v1::WriteRow> Row(const std::string& view, const std::string& key) const;
  size_t RowCount(const std::string& view) const;

  // (view, entity key) pairs of every Get this node answered or was asked.
  std::vector<std::pair<std::string, std::string>> GetKeys() const;
  int get_calls() const { return get_calls_.load(); }
  int write_calls() const { return write_calls_.load(); }
  void ClearRecords();

 private:
  class Service;
  const uint32_t id_;
  const quiver::v1::Registry registry_;
  std::atomic<uint64_t> epoch_{1};
  std::atomic<bool> hang_{false};
  std::atomic<int> fail_code_{0};
  std::atomic<int64_t> now_us_{0};
  std::atomic<int> get_calls_{0};
  std::atomic<int> write_calls_{0};
  mutable absl::Mutex mu_;
  std::map<std::string, std::map<std::string, quiver::v1::WriteRow>> rows_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, std::string>> get_keys_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

// A small registry (version 7): entities origin (STRING), destination
// (STRING), user (user_id INT64); views route_stats keyed by origin and
// destination {avg_delay DOUBLE, flights INT64, carriers LIST<STRING>} with no
// TTL and user_stats keyed by user {score FLOAT, active BOOL, last_seen
// UNIX_TIMESTAMP} with a one-hour TTL; service delay_model_v1 =
// [route_stats:avg_delay, user_stats].
quiver::v1::Registry SampleRegistry();

// A map of `num_partitions` partitions over `nodes` (all UP): partition p is
// held by nodes[(p + i) % n] for i < min(r, n), the first preferred.
quiver::v1::ClusterMap MakeClusterMap(uint64_t epoch, uint32_t num_partitions, uint32_t r,
                                      const std::vector<const FakeNode*>& nodes);

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_UNIT_CLIENT_FAKE_CLUSTER_H_
