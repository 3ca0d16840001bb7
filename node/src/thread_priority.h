// Lowers the CPU priority of the calling thread, for background work that
// must leave the CPU to lookups on a busy machine (streams, repair).
#ifndef QUIVER_NODE_THREAD_PRIORITY_H_
#define QUIVER_NODE_THREAD_PRIORITY_H_

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace quiver::node {

// Sets the calling thread's nice value (setpriority(2) with the thread's id:
// Linux schedules threads apart) to `nice` (0: leaves it). A value the
// process may not set (below its own without CAP_SYS_NICE) is logged, naming
// `what`, and ignored. Thread-safe.
inline void NiceThisThread(int nice, const char* what) {
  if (nice == 0) return;
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice) != 0) {
    spdlog::warn("{}: could not set the thread's nice value to {}: {}", what, nice,
                 std::strerror(errno));
  }
}

}  // namespace quiver::node

#endif  // QUIVER_NODE_THREAD_PRIORITY_H_
