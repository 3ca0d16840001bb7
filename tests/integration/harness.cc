#include "harness.h"

#include <duckdb.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace quiver::testing {
namespace fs = std::filesystem;

std::string SourceDir() {
  const char* s = std::getenv("QUIVER_SOURCE_DIR");
  return s ? s : ".";
}

std::string BinDir() {
  const char* b = std::getenv("QUIVER_BINARY_DIR");
  return b ? std::string(b) + "/bin" : "./bin";
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CommandResult Run(const std::vector<std::string>& argv, int timeout_s) {
  CommandResult result;
  TempDir tmp;
  const std::string out_path = tmp.File("out");
  const std::string err_path = tmp.File("err");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  if (posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) {
    posix_spawn_file_actions_destroy(&actions);
    result.err = "cannot start " + argv[0];
    return result;
  }
  posix_spawn_file_actions_destroy(&actions);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  while (true) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.err = "timed out: " + argv[0];
      return result;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Up(
    int nodes, int replication_factor, int partitions, const std::vector<std::string>& up_args,
    const std::function<void(const std::filesystem::path&)>& prepare) {
  std::unique_ptr<LocalCluster> c(new LocalCluster());
  c->nodes_ = nodes;
  if (prepare) prepare(c->dir());
  std::vector<std::string> argv = {SourceDir() + "/deploy/local/cluster", "up", "--dir", c->dir().string(),
                                   "--nodes", std::to_string(nodes), "--replication-factor",
                                   std::to_string(replication_factor), "--base-port", "0", "--partitions",
                                   std::to_string(partitions), "--bin-dir", BinDir(), "--heartbeat-timeout-ms",
                                   "1000"};
  argv.insert(argv.end(), up_args.begin(), up_args.end());
  const auto r = Run(argv, 120);
  if (r.exit_code != 0) {
    return absl::UnavailableError(absl::StrCat("cluster up failed (", r.exit_code, "): ", r.out,
                                               r.err));
  }
  const auto pos = r.out.rfind("coordinator=");
  if (pos == std::string::npos) return absl::InternalError("no coordinator= line: " + r.out);
  c->coordinator_ = r.out.substr(pos + 12);
  while (!c->coordinator_.empty() && std::isspace(c->coordinator_.back())) {
    c->coordinator_.pop_back();
  }
  return c;
}

LocalCluster::~LocalCluster() {
  Run({SourceDir() + "/deploy/local/cluster", "down", "--dir", dir().string()}, 60);
}

absl::StatusOr<std::unique_ptr<client::Client>> LocalCluster::Connect(
    client::ClientOptions options) const {
  options.coordinator_address = coordinator_;
  return client::Client::Create(options);
}

CommandResult LocalCluster::Ctl(const std::vector<std::string>& args, int timeout_s) const {
  std::vector<std::string> argv = {BinDir() + "/quiverctl", "--coordinator", coordinator_};
  if (fs::exists(dir() / "quiverctl.args")) {
    std::istringstream flags(ReadFile(dir() / "quiverctl.args"));
    for (std::string flag; flags >> flag;) argv.push_back(flag);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, timeout_s);
}

int LocalCluster::Pid(const std::string& process) const {
  std::ifstream in(dir() / absl::StrCat(process, ".pid"));
  int pid = 0;
  in >> pid;
  return pid;
}

int LocalCluster::NodePid(int i) const { return Pid(absl::StrCat("node", i)); }

std::string LocalCluster::NodeAddress(int i) const {
  std::string a = ReadFile(dir() / absl::StrCat("node", i, ".addr"));
  while (!a.empty() && std::isspace(a.back())) a.pop_back();
  return a;
}

std::vector<std::string> LocalCluster::AllListeningAddresses() const {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir())) {
    if (entry.path().extension() != ".log") continue;
    const std::string log = ReadFile(entry.path());
    for (const std::string key : {"listening=", "metrics="}) {
      const auto pos = log.find(key);
      if (pos == std::string::npos) continue;
      const auto end = log.find_first_of(" \n", pos);
      out.push_back(log.substr(pos + key.size(), end - pos - key.size()));
    }
  }
  return out;
}

bool LocalCluster::KillProcess(int pid) {
  if (pid <= 0 || kill(pid, SIGKILL) != 0) return false;
  for (int k = 0; k < 200 && kill(pid, 0) == 0; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

bool LocalCluster::KillNode(int i) { return KillProcess(NodePid(i)); }

bool LocalCluster::KillCoordinator() { return KillProcess(Pid("coordinator")); }

absl::Status LocalCluster::StartCoordinator() {
  const auto r = Run({SourceDir() + "/deploy/local/cluster", "start-coordinator", "--dir",
                      dir().string(), "--bin-dir", BinDir()},
                     60);
  if (r.exit_code != 0) return absl::UnavailableError("start-coordinator failed: " + r.out + r.err);
  return absl::OkStatus();
}

absl::Status LocalCluster::StartNode(int i, bool wait_up) {
  const auto r = Run({SourceDir() + "/deploy/local/cluster", "start-node", "--dir",
                      dir().string(), "--node", std::to_string(i), "--bin-dir", BinDir()},
                     60);
  if (r.exit_code != 0) return absl::UnavailableError("start-node failed: " + r.out + r.err);
  return wait_up ? WaitUp(nodes_) : absl::OkStatus();
}

absl::StatusOr<int> LocalCluster::AddNode() {
  const auto r = Run({SourceDir() + "/deploy/local/cluster", "add-node", "--dir", dir().string(),
                      "--bin-dir", BinDir()},
                     120);
  if (r.exit_code != 0) return absl::UnavailableError("add-node failed: " + r.out + r.err);
  // The last line is nodeI=HOST:PORT.
  const auto pos = r.out.rfind("node");
  int index = 0;
  if (pos == std::string::npos || std::sscanf(r.out.c_str() + pos, "node%d=", &index) != 1) {
    return absl::InternalError("add-node printed no nodeI= line: " + r.out);
  }
  nodes_ = std::max(nodes_, index);
  return index;
}

absl::Status LocalCluster::WaitUp(int n, int timeout_s) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto r = Ctl({"nodes"}, 10);
    int up = 0;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      std::istringstream f(line);
      std::string id, addr, state;
      f >> id >> addr >> state;
      if (state == "UP") ++up;
    }
    if (up >= n) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat("fewer than ", n, " nodes UP"));
}

absl::StatusOr<std::unique_ptr<TempDir>> RepoWithUsersParquet(const std::string& select) {
  auto repo = std::make_unique<TempDir>();
  fs::create_directories(repo->File("data"));
  auto made = DuckQuery(absl::StrCat("COPY (", select, ") TO '", repo->File("data/users.parquet"),
                                     "' (FORMAT PARQUET)"));
  if (!made.ok()) return made.status();
  return repo;
}

absl::StatusOr<Table> DuckQuery(const std::string& sql) {
  duckdb_database db;
  duckdb_connection con;
  if (duckdb_open(nullptr, &db) == DuckDBError) return absl::InternalError("duckdb_open");
  if (duckdb_connect(db, &con) == DuckDBError) {
    duckdb_close(&db);
    return absl::InternalError("duckdb_connect");
  }
  duckdb_result res;
  Table table;
  absl::Status status;
  if (duckdb_query(con, sql.c_str(), &res) == DuckDBError) {
    status = absl::InvalidArgumentError(duckdb_result_error(&res));
  } else {
    const idx_t rows = duckdb_row_count(&res), cols = duckdb_column_count(&res);
    table.resize(rows);
    for (idx_t r = 0; r < rows; ++r) {
      table[r].resize(cols);
      for (idx_t c = 0; c < cols; ++c) {
        if (duckdb_value_is_null(&res, c, r)) continue;
        char* v = duckdb_value_varchar(&res, c, r);
        table[r][c] = Cell{false, v ? v : ""};
        duckdb_free(v);
      }
    }
  }
  duckdb_destroy_result(&res);
  duckdb_disconnect(&con);
  duckdb_close(&db);
  if (!status.ok()) return status;
  return table;
}

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace quiver::testing
