// Process runtime shared by quiver-coordinator, quiver-node and quiverctl:
// flags (with an optional YAML config file), logging, the Prometheus
// /metrics endpoint, per-RPC metrics and shutdown signals.
//
// Flags are "--name value" or "--name=value". "--config FILE" reads a YAML
// mapping whose keys are flag names without dashes (listen: 127.0.0.1:6000);
// flags given on the command line override the file.
//
// Thread-safety: Flags is not thread-safe (parse once in main). RpcMetrics is
// thread-safe (prometheus-cpp's metrics are).
#ifndef QUIVER_RUNTIME_RUNTIME_H_
#define QUIVER_RUNTIME_RUNTIME_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace prometheus {
class Registry;
class Counter;
class Histogram;
class Gauge;
template <typename T>
class Family;
}  // namespace prometheus

namespace quiver::runtime {

class Flags {
 public:
  // Parses argv[first..]. Flags not in `known` or `switches` are an error;
  // a switch takes no value ("--insecure" reads as "true"); positional
  // arguments are kept in order. Reads --config if given.
  // Errors: kInvalidArgument (unknown flag, missing value, malformed config
  // YAML, with the file and line), kNotFound (config file missing).
  static absl::StatusOr<Flags> Parse(int argc, char** argv, int first,
                                     const std::set<std::string>& known,
                                     const std::set<std::string>& switches = {});

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  // Errors: kInvalidArgument naming the flag when the value is not an integer.
  absl::StatusOr<int64_t> GetInt(const std::string& name, int64_t fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// Makes spdlog's default logger write to stderr (stdout is for results),
// sets its level ("trace", "debug", "info", "warn",
// "error"), and a pattern with time, level and process name.
// Errors: kInvalidArgument for an unknown level.
absl::Status SetupLogging(const std::string& process_name, const std::string& level);

// Splits "host:port". Errors: kInvalidArgument.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& address);

// Per-RPC request counts (by method and code) and latency histograms (unit:
// seconds, Prometheus convention) registered in one prometheus registry.
class RpcMetrics {
 public:
  RpcMetrics(prometheus::Registry& registry, const std::string& service);
  // Records one finished RPC. `ok` false counts it as an error.
  void Record(const std::string& method, bool ok, std::chrono::nanoseconds latency);

 private:
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* latency_;
  std::string service_;
};

// A listener's TLS: PEM file paths; all empty = plaintext
// (quiver/security/security.h reads them from --tls-cert, --tls-key and
// --tls-client-ca).
struct TlsFiles {
  std::string cert;
  std::string key;
  std::string client_ca;  // non-empty: a client certificate signed by it is required
  bool enabled() const { return !cert.empty(); }
};

// Serves /metrics (Prometheus text format 0.0.4) for `registry` on
// `address` ("127.0.0.1:0" picks a port), over HTTPS when `tls` is
// enabled. cpp-httplib with one worker thread (a scrape every few seconds).
class MetricsServer {
 public:
  // Errors: kUnavailable when the address cannot be bound, kInvalidArgument
  // when the certificate, key or client CA does not load.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, std::shared_ptr<prometheus::Registry> registry,
      const TlsFiles& tls = {});
  ~MetricsServer();
  // "host:port" actually bound.
  const std::string& address() const { return address_; }

 private:
  struct Impl;
  MetricsServer() = default;
  std::unique_ptr<Impl> impl_;
  std::string address_;
};

// Blocks until SIGINT or SIGTERM arrives (signals are blocked in every thread
// created after InstallSignalHandlers, which must run first in main).
void InstallSignalHandlers();
int WaitForShutdownSignal();

}  // namespace quiver::runtime

#endif  // QUIVER_RUNTIME_RUNTIME_H_
