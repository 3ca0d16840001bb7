// Integration-test harness: a real local cluster (deploy/local/cluster with
// free ports under a temporary directory, always stopped), commands run as
// subprocesses, and DuckDB as the independent source of expected answers.
//
// Thread-safety: none; use from the test's main thread.
#ifndef QUIVER_TESTS_INTEGRATION_HARNESS_H_
#define QUIVER_TESTS_INTEGRATION_HARNESS_H_

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/temp_dir.h"
#include "quiver/client/client.h"

namespace quiver::testing {

// Paths of the source and build trees (set by CTest's environment).
std::string SourceDir();
std::string BinDir();

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// The whole file ("" when it cannot be read).
std::string ReadFile(const std::filesystem::path& p);

// Runs argv[0] with arguments, no shell; waits for it. `timeout_s` kills it.
CommandResult Run(const std::vector<std::string>& argv, int timeout_s = 300);

// A cluster started with deploy/local/cluster; stopped by the destructor.
class LocalCluster {
 public:
  // Starts a coordinator and `nodes` nodes with `replication_factor`.
  // Aborts the test (returns an error) when the cluster does not come up.
  // `up_args` are added to `cluster up` (--tls, --auth); `prepare` runs on
  // the cluster's folder before it starts (e.g. to write DIR/tokens.yaml).
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Up(
      int nodes, int replication_factor, int partitions = 256,
      const std::vector<std::string>& up_args = {},
      const std::function<void(const std::filesystem::path&)>& prepare = nullptr);
  ~LocalCluster();

  const std::string& coordinator() const { return coordinator_; }
  std::filesystem::path dir() const { return dir_.path(); }

  // A client of this cluster (options.coordinator_address is set here).
  // Errors: as quiver::client::Client::Create.
  absl::StatusOr<std::unique_ptr<client::Client>> Connect(client::ClientOptions options = {}) const;

  // quiverctl --coordinator <this> [the flags in DIR/quiverctl.args] args...
  CommandResult Ctl(const std::vector<std::string>& args, int timeout_s = 600) const;

  // SIGKILL node i (1-based); returns false if it was not running.
  bool KillNode(int i);
  // SIGKILL the coordinator; returns false if it was not running.
  bool KillCoordinator();
  // deploy/local/cluster start-coordinator: restarts it on its data and
  // address, and waits until it listens.
  absl::Status StartCoordinator();
  // Restarts node i with its data; with `wait_up`, waits until every node of
  // the cluster is UP again (a restarted node comes back RECOVERING and
  // repairs first), else only until it listens.
  absl::Status StartNode(int i, bool wait_up = true);
  // deploy/local/cluster add-node: starts one more node (the next index) and
  // returns its index; it registers JOINING when the cluster has a registry.
  absl::StatusOr<int> AddNode();
  // Waits until `n` nodes are UP (per quiverctl nodes). unit: seconds.
  absl::Status WaitUp(int n, int timeout_s = 30) const;
  int NodePid(int i) const;
  std::string NodeAddress(int i) const;
  // Every host:port the cluster's processes listen on (gRPC and /metrics),
  // as they printed them at start-up.
  std::vector<std::string> AllListeningAddresses() const;

 private:
  LocalCluster() = default;
  // The pid in DIR/<process>.pid (0 when absent).
  int Pid(const std::string& process) const;
  // SIGKILL `pid` and wait (at most 2 s) until it is gone.
  static bool KillProcess(int pid);
  TempDir dir_;
  std::string coordinator_;
  int nodes_ = 0;
};

// Runs `sql` in a fresh in-memory DuckDB; every value as text (NULL as
// std::nullopt-like empty optional marked by `is_null`).
struct Cell {
  bool is_null = true;
  std::string text;
};
using Table = std::vector<std::vector<Cell>>;
absl::StatusOr<Table> DuckQuery(const std::string& sql);

// A feature-repository directory whose data/users.parquet DuckDB writes from
// `select` (a SELECT statement). Errors: DuckDB's.
absl::StatusOr<std::unique_ptr<TempDir>> RepoWithUsersParquet(const std::string& select);

// Time now. unit: microseconds since the epoch.
int64_t NowMicros();

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_INTEGRATION_HARNESS_H_
