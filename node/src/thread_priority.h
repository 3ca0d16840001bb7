// Names and lowers the CPU priority of the node's own threads: background
// work (streams, repair, cleanup) must leave the CPU to lookups on a busy
// machine, and `top -H` / `perf` should say which thread is which.
#ifndef QUIVER_NODE_THREAD_PRIORITY_H_
#define QUIVER_NODE_THREAD_PRIORITY_H_

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace quiver::node {

// The nice value of the node's background threads (repair, cleanup; the
// streams' is StreamerOptions::nice): with it a lookup thread that wakes
// takes the CPU from them at once on a busy machine.
inline constexpr int kBackgroundNice = 10;

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

// Names the calling thread `name` (pthread_setname_np; Linux keeps 15
// bytes, longer names are cut), as `top -H`, `ps -L` and perf show it.
// Thread-safe; a failure is ignored (names are for people only).
inline void NameThisThread(const char* name) {
  const std::string cut = std::string(name).substr(0, 15);
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace quiver::node

#endif  // QUIVER_NODE_THREAD_PRIORITY_H_
