// RedisServer: a throwaway redis-server for tests and benchmarks, on
// 127.0.0.1 at a free port, without persistence (--save "" --appendonly no),
// its working folder a fresh temporary directory. Start() waits until it
// answers PING; the destructor stops it (SIGTERM, then SIGKILL after 5 s) and
// removes the folder. The child also gets SIGKILL if this process dies first
// (PR_SET_PDEATHSIG: when the thread that called Start ends), so no server
// outlives a crashed test: call Start from a thread that outlives the server.
//
// Thread-safety: Start is reentrant; one RedisServer object per owner.
#ifndef QUIVER_BENCH_FEAST_REDIS_REDIS_SERVER_H_
#define QUIVER_BENCH_FEAST_REDIS_REDIS_SERVER_H_

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace quiver::bench {

class RedisServer {
 public:
  // Starts `binary` (found on PATH) with `extra_args` appended to the command
  // line (e.g. {"--maxmemory", "1gb"}). Tries up to 3 free ports (another
  // process may take one between the probe and redis binding it).
  // Errors: kUnavailable (it did not answer PING within `start_timeout`),
  // kInternal (fork, temp dir).
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(
      const std::string& binary = "redis-server", const std::vector<std::string>& extra_args = {},
      std::chrono::milliseconds start_timeout = std::chrono::seconds(10)) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "quiver-redis-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr)
      return absl::InternalError("redis: cannot make a temp dir");
    std::unique_ptr<RedisServer> server(new RedisServer(tmpl));
    absl::Status last = absl::UnavailableError("redis: no attempt");
    for (int attempt = 0; attempt < 3; ++attempt) {
      const int port = FreePort();
      if (port <= 0) return absl::InternalError("redis: cannot find a free port");
      last = server->Launch(binary, port, extra_args, start_timeout);
      if (last.ok()) return server;
      server->Stop();
    }
    return last;
  }

  ~RedisServer() {
    Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  const std::string& host() const { return host_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }

  // Stops the server (idempotent): SIGTERM, waits up to 5 s, then SIGKILL.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (waitpid(pid_, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
  }

 private:
  explicit RedisServer(std::string dir) : dir_(std::move(dir)) {}

  static int FreePort() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    int port = -1;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
  }

  absl::Status Launch(const std::string& binary, int port, const std::vector<std::string>& extra,
                      std::chrono::milliseconds timeout) {
    std::vector<std::string> args = {
        binary,   "--port",    std::to_string(port), "--bind",      host_,
        "--save", "",          "--appendonly",       "no",          "--dir",
        dir_,     "--logfile", dir_ + "/redis.log",  "--daemonize", "no"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) return absl::InternalError("redis: fork failed");
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    pid_ = pid;
    port_ = port;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {  // exited: port taken or no binary
        pid_ = -1;
        return absl::UnavailableError("redis: " + binary + " exited at start (see " + dir_ +
                                      "/redis.log)");
      }
      if (Ping()) return absl::OkStatus();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return absl::UnavailableError("redis: no answer to PING on port " + std::to_string(port));
  }

  bool Ping() const {
    const timeval tv{0, 200000};
    redisContext* ctx = redisConnectWithTimeout(host_.c_str(), port_, tv);
    bool ok = false;
    if (ctx != nullptr && ctx->err == 0) {
      auto* reply = static_cast<redisReply*>(redisCommand(ctx, "PING"));
      ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
      if (reply != nullptr) freeReplyObject(reply);
    }
    if (ctx != nullptr) redisFree(ctx);
    return ok;
  }

  std::string dir_;
  std::string host_ = "127.0.0.1";
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_FEAST_REDIS_REDIS_SERVER_H_
