// quiverctl's command line: global flags, the command and its arguments, and
// the small value parsers the commands share (time windows, --views lists).
//
//   quiverctl [--coordinator HOST:PORT] [--log-level L] [--deadline-ms N]
//             [--tls-ca FILE [--tls-cert FILE --tls-key FILE]] [--token-file FILE] COMMAND ...
//
// Flags are "--name value" or "--name=value"; global flags may also follow the
// command. "--help" (or "-h") anywhere asks for the usage text.
//
// Thread-safety: pure functions.
#ifndef QUIVER_COORDINATOR_CTL_ARGS_H_
#define QUIVER_COORDINATOR_CTL_ARGS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace quiver::ctl {

inline constexpr char kDefaultCoordinator[] = "127.0.0.1:6000";

struct CommandLine {
  std::string coordinator = kDefaultCoordinator;  // host:port
  std::string log_level = "warn";
  int64_t deadline_ms = 10000;  // unit: milliseconds, per RPC; > 0
  bool help = false;  // --help / -h / the help command: print usage, exit 0
  std::string command;  // "apply", "plan", ...; empty only when help
  std::vector<std::string> positional;  // the command's positional arguments
  std::map<std::string, std::string> flags;  // the command's flags, without dashes
  // get-historical's DuckDB: memory cap (unit: MB; 0: DuckDB's default) and
  // the folder it spills into (empty: the system's temp folder).
  int64_t offline_memory_mb = 0;
  std::string offline_temp_dir;
  // --tls-ca, --tls-cert/--tls-key (client certificate), --token-file:
  // TLS and the bearer token of every call (quiver/security/security.h).
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  std::string token_file;
};

// Parses the arguments after argv[0]. `env_coordinator` is the value of
// QUIVER_COORDINATOR (nullptr or empty: unset); --coordinator overrides it.
// Checks the command's arity and flags (get-online needs --entities and
// exactly one of --features / --feature-service).
// Errors: kInvalidArgument (unknown command or flag, missing value, wrong
// number of arguments): the caller prints usage and exits 2.
absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                             const char* env_coordinator);

// The usage text listing every command (ends with a newline).
std::string UsageText();

// Parses "a,b,c" (--views, --features): non-empty names, no duplicates, order
// kept. Errors: kInvalidArgument naming the flag.
absl::StatusOr<std::vector<std::string>> ParseNameList(const std::string& flag,
                                                       const std::string& text);

// What get-online and get-historical ask for: --features REF,... (refs) or
// --feature-service NAME (service); ParseCommandLine made sure exactly one is
// set. Errors: as ParseNameList for --features.
struct FeatureSelection {
  std::vector<std::string> refs;
  std::string service;
};
absl::StatusOr<FeatureSelection> ParseFeatureSelection(const CommandLine& cl);

// Parses START and END (ISO-8601, UTC when no zone) into microseconds since the
// epoch. Errors: kInvalidArgument for a malformed time or START >= END.
absl::StatusOr<std::pair<int64_t, int64_t>> ParseWindow(const std::string& start,
                                                        const std::string& end);

}  // namespace quiver::ctl

#endif  // QUIVER_COORDINATOR_CTL_ARGS_H_
