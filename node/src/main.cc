// quiver-node: parses flags, starts a Node, prints its one stdout line, runs
// until SIGINT/SIGTERM.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <thread>

#include "absl/synchronization/notification.h"
#include "quiver/node/node.h"
#include "quiver/runtime/runtime.h"

int main(int argc, char** argv) {
  quiver::runtime::InstallSignalHandlers();
  auto options = quiver::node::ParseNodeFlags(argc, argv);
  if (!options.ok()) {
    std::cerr << "quiver-node: " << options.status().message() << std::endl;
    return 1;
  }
  if (auto s = quiver::runtime::SetupLogging("quiver-node", options->log_level); !s.ok()) {
    std::cerr << "quiver-node: " << s.message() << std::endl;
    return 1;
  }
  // Leaked on purpose: the signal thread may outlive main's locals.
  auto* shutdown = new absl::Notification();
  std::thread([shutdown] {
    quiver::runtime::WaitForShutdownSignal();
    shutdown->Notify();
  }).detach();

  auto node = quiver::node::Node::Start(*options, shutdown);
  if (!node.ok()) {
    if (node.status().code() == absl::StatusCode::kCancelled) return 0;
    std::cerr << "quiver-node: " << node.status().message() << std::endl;
    return 1;
  }
  std::cout << "listening=" << (*node)->listen_address() << " metrics=" << (*node)->metrics_address()
            << " lookup=" << (*node)->lookup_address() << " node_id=" << (*node)->node_id()
            << std::endl;
  shutdown->WaitForNotification();
  spdlog::info("shutting down");
  (*node)->Stop();
  return 0;
}
