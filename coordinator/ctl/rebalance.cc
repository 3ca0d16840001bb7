// quiverctl rebalance [--wait], nodes drain ID [--wait], nodes remove ID
// (docs/architecture.md, "Rebalancing and epoch fencing"; README,
// "Scaling out and in").
#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ctl/operations.h"
#include "ctl/session.h"

namespace quiver::ctl {
namespace {

namespace v1 = quiver::v1;
using Stub = v1::CoordinatorService::Stub;
using Clock = std::chrono::steady_clock;

absl::StatusOr<v1::ListNodesResponse> ListNodes(Coordinator& coord) {
  v1::ListNodesResponse resp;
  if (auto s = coord.Call("ListNodes", &Stub::ListNodes, v1::ListNodesRequest(), &resp); !s.ok()) {
    return s;
  }
  return resp;
}

// Polls ListNodes every 200 ms (a failed poll is retried: the coordinator may
// be restarting) and prints a progress line at most once a second, until
// `done` holds. Returns the last listing.
absl::StatusOr<v1::ListNodesResponse> WaitUntil(
    Coordinator& coord, std::FILE* out, std::FILE* err,
    const std::function<bool(const v1::ListNodesResponse&)>& done) {
  auto last_print = Clock::now() - std::chrono::seconds(1);
  uint64_t last_bytes = 0;
  auto last_bytes_at = Clock::now();
  for (int failures = 0;;) {
    auto nodes = ListNodes(coord);
    if (!nodes.ok()) {
      if (!Transient(nodes.status()) || ++failures > 300) return nodes.status();
      if (failures == 1 || failures % 25 == 0) {
        std::fprintf(err, "rebalance: %s; retrying\n", std::string(nodes.status().message()).c_str());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    failures = 0;
    if (done(*nodes)) return nodes;
    const auto now = Clock::now();
    if (now - last_print >= std::chrono::seconds(1)) {
      const auto& r = nodes->rebalance();
      const double secs = std::chrono::duration<double>(now - last_bytes_at).count();
      const double mbps =
          secs > 0 && r.bytes_streamed() >= last_bytes ? (r.bytes_streamed() - last_bytes) / 1e6 / secs : 0;
      Print(out, absl::StrFormat("rebalance: moved %u/%u partitions, %u rows, %.1f MB/s\n",
                                 r.moves_done(), r.moves_total(), r.rows_streamed(), mbps));
      std::fflush(out);
      last_print = now;
      last_bytes = r.bytes_streamed();
      last_bytes_at = now;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// No partition moves and every partition has R replicas serving reads.
bool Settled(const v1::ListNodesResponse& nodes) {
  return !nodes.rebalance().active() && nodes.rebalance().under_replicated() == 0;
}

}  // namespace

absl::Status RunRebalance(const CommandLine& cl, std::FILE* out, std::FILE* err) {
  Coordinator coord(cl);
  const auto start = Clock::now();
  v1::RebalanceResponse resp;
  if (auto s = coord.Call("Rebalance", &Stub::Rebalance, v1::RebalanceRequest(), &resp); !s.ok()) {
    return s;
  }
  if (resp.moves_planned() > 0) {
    Print(out, absl::StrCat("rebalance: planned ", resp.moves_planned(), " moves\n"));
  } else if (resp.status().active()) {
    Print(out, absl::StrCat("rebalance: ", resp.status().moves_total() - resp.status().moves_done(),
                            " moves running\n"));
  } else {
    Print(out, "rebalance: nothing to move\n");
  }
  if (!cl.flags.count("wait")) return absl::OkStatus();
  auto last = WaitUntil(coord, out, err, Settled);
  if (!last.ok()) return last.status();
  const auto& r = last->rebalance();
  // The rebalance's own duration when the coordinator has it (it may have
  // started before this command, when a node joined), else this wait's.
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (r.started_us() > 0 && r.finished_us() >= r.started_us()) {
    seconds = static_cast<double>(r.finished_us() - r.started_us()) / 1e6;
  }
  Print(out, absl::StrFormat("rebalance: done moved_partitions=%u rows=%u seconds=%.1f mb_per_s=%.1f\n",
                             r.moves_done(), r.rows_streamed(), seconds,
                             seconds > 0 ? r.bytes_streamed() / 1e6 / seconds : 0.0));
  return absl::OkStatus();
}

absl::Status RunNodesChange(const CommandLine& cl, std::FILE* out, std::FILE* err) {
  Coordinator coord(cl);
  uint32_t id = 0;
  (void)absl::SimpleAtoi(cl.positional[1], &id);  // checked by ParseCommandLine
  if (cl.positional[0] == "remove") {
    v1::RemoveNodeRequest req;
    req.set_node_id(id);
    v1::RemoveNodeResponse resp;
    if (auto s = coord.Call("RemoveNode", &Stub::RemoveNode, req, &resp); !s.ok()) return s;
    if (resp.forgotten()) {
      Print(out, absl::StrCat("node ", id, " removed\n"));
    } else {
      auto nodes = ListNodes(coord);
      uint32_t held = 0;
      if (nodes.ok()) {
        for (const auto& n : nodes->nodes()) {
          if (n.node().id() == id) held = n.partitions_held();
        }
      }
      Print(out, absl::StrCat("node ", id, " removed: ", held,
                              " partitions get new replicas\n"));
    }
    return absl::OkStatus();
  }
  v1::DrainNodeRequest req;
  req.set_node_id(id);
  v1::DrainNodeResponse resp;
  if (auto s = coord.Call("DrainNode", &Stub::DrainNode, req, &resp); !s.ok()) return s;
  Print(out, absl::StrCat("node ", id, ": LEAVING, ", resp.moves_planned(), " moves planned\n"));
  if (!cl.flags.count("wait")) return absl::OkStatus();
  auto drained = [id](const v1::ListNodesResponse& nodes) {
    for (const auto& n : nodes.nodes()) {
      if (n.node().id() == id) return n.partitions_held() == 0 && !nodes.rebalance().active();
    }
    return true;  // forgotten
  };
  auto last = WaitUntil(coord, out, err, drained);
  if (!last.ok()) return last.status();
  Print(out, absl::StrCat("node ", id, " drained: holds 0 partitions\n"));
  return absl::OkStatus();
}

}  // namespace quiver::ctl
