// quiverctl: the operator's command line. Usage: quiverctl --help.
// Exit codes: 0 success, 1 the command failed, 2 bad command line.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ctl/args.h"
#include "ctl/commands.h"
#include "quiver/runtime/runtime.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto cl = quiver::ctl::ParseCommandLine(args, std::getenv("QUIVER_COORDINATOR"));
  if (!cl.ok()) {
    std::fprintf(stderr, "quiverctl: %s\n%s", std::string(cl.status().message()).c_str(),
                 quiver::ctl::UsageText().c_str());
    return 2;
  }
  if (cl->help) {
    std::fputs(quiver::ctl::UsageText().c_str(), stdout);
    return std::fflush(stdout) == 0 && !std::ferror(stdout) ? 0 : 1;
  }
  if (auto s = quiver::runtime::SetupLogging("quiverctl", cl->log_level); !s.ok()) {
    std::fprintf(stderr, "quiverctl: --log-level: %s\n%s", std::string(s.message()).c_str(),
                 quiver::ctl::UsageText().c_str());
    return 2;
  }
  absl::Status s = quiver::ctl::RunCommand(*cl, stdout, stderr);
  if ((std::fflush(stdout) != 0 || std::ferror(stdout)) && s.ok()) {
    s = absl::UnavailableError("cannot write the output (stdout)");
  }
  if (!s.ok()) {
    std::fprintf(stderr, "quiverctl: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
