// quiverctl's commands. Each talks to the coordinator (a plain gRPC stub to
// CoordinatorService) or, for get-online, through quiver::client::Client, and
// prints its result to `out`; progress goes to `err`.
//
// Thread-safety: run one command per process.
#ifndef QUIVER_COORDINATOR_CTL_COMMANDS_H_
#define QUIVER_COORDINATOR_CTL_COMMANDS_H_

#include <cstdio>

#include "absl/status/status.h"
#include "ctl/args.h"

namespace quiver::ctl {

// Runs `cl.command` (not help). Blocks until done; materialize blocks until
// the job finishes. Errors: whatever stopped the command, with a message fit
// for "quiverctl: <message>" (validation failures, RPC errors with the
// coordinator's message, unknown feature references, unreadable files, a
// failed materialization job).
absl::Status RunCommand(const CommandLine& cl, std::FILE* out, std::FILE* err);

}  // namespace quiver::ctl

#endif  // QUIVER_COORDINATOR_CTL_COMMANDS_H_
