#include "quiver/storage/io_uring_fs.h"

#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "rocksdb/file_system.h"

namespace quiver::storage {
namespace {

// Entries of a thread's ring: a MultiRead with more requests fills the ring,
// waits, and submits the rest (RocksDB's own io_uring path uses 256).
constexpr unsigned kRingEntries = 128;

std::atomic<uint64_t> g_multi_reads{0};
std::atomic<uint64_t> g_requests{0};
std::atomic<uint64_t> g_resubmits{0};
std::atomic<uint64_t> g_fallbacks{0};
std::atomic<uint64_t> g_single_reads{0};

void Bump(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

// The calling thread's ring, created on first use and torn down when the
// thread exits. A ring left in an unknown state by a failed submission is
// rebuilt (Reset) before the next use.
class ThreadRing {
 public:
  ThreadRing() { Init(); }
  ~ThreadRing() {
    if (ok_) io_uring_queue_exit(&ring_);
  }
  ThreadRing(const ThreadRing&) = delete;
  ThreadRing& operator=(const ThreadRing&) = delete;

  io_uring* get() { return ok_ ? &ring_ : nullptr; }
  void Reset() {
    if (ok_) io_uring_queue_exit(&ring_);
    Init();
  }

 private:
  void Init() { ok_ = io_uring_queue_init(kRingEntries, &ring_, 0) == 0; }

  io_uring ring_{};
  bool ok_ = false;
};

ThreadRing& ThisThreadRing() {
  thread_local ThreadRing ring;
  return ring;
}

// A random-access file whose MultiRead goes through the thread's ring on its
// own descriptor `fd`; everything else is the base file's.
class IoUringRandomAccessFile : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  IoUringRandomAccessFile(std::unique_ptr<rocksdb::FSRandomAccessFile> base, int fd,
                          std::string name)
      : FSRandomAccessFileOwnerWrapper(std::move(base)),
        fd_(fd),
        name_(std::move(name)),
        direct_(target()->use_direct_io()),
        alignment_(target()->GetRequiredBufferAlignment()) {}
  ~IoUringRandomAccessFile() override { ::close(fd_); }

  rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs,
                              const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    // One read gains nothing from a ring: a pread is one syscall as well.
    if (num_reqs <= 1) {
      Bump(g_single_reads);
      return target()->MultiRead(reqs, num_reqs, options, dbg);
    }
    ThreadRing& ring = ThisThreadRing();
    if (ring.get() == nullptr) {
      Bump(g_fallbacks);
      return target()->MultiRead(reqs, num_reqs, options, dbg);
    }
    Bump(g_multi_reads);
    Bump(g_requests, num_reqs);
    return RingRead(ring, reqs, num_reqs);
  }

 private:
  rocksdb::IOStatus ReadError(const rocksdb::FSReadRequest& req, int err) const {
    return rocksdb::IOStatus::IOError("io_uring read of " + name_ + " at offset " +
                                      std::to_string(req.offset) + ": " + ErrnoText(err));
  }

  // Submits every request (resubmitting the rest of short or interrupted
  // reads) and reaps all completions before returning, so no read can land in
  // a caller's buffer afterwards.
  rocksdb::IOStatus RingRead(ThreadRing& thread_ring, rocksdb::FSReadRequest* reqs,
                             size_t num_reqs) {
    io_uring* ring = thread_ring.get();
    absl::InlinedVector<size_t, 64> done(num_reqs, 0);  // bytes read per request
    absl::InlinedVector<uint32_t, 64> todo;             // requests to (re)submit
    todo.reserve(num_reqs);
    for (size_t i = num_reqs; i-- > 0;) {
      reqs[i].status = rocksdb::IOStatus::OK();
      todo.push_back(static_cast<uint32_t>(i));
    }
    unsigned in_kernel = 0;  // submitted, completion not reaped yet
    while (!todo.empty() || in_kernel > 0) {
      unsigned queued = 0;
      while (!todo.empty() && in_kernel + queued < kRingEntries) {
        io_uring_sqe* sqe = io_uring_get_sqe(ring);
        if (sqe == nullptr) break;
        const uint32_t i = todo.back();
        todo.pop_back();
        const rocksdb::FSReadRequest& r = reqs[i];
        io_uring_prep_read(sqe, fd_, r.scratch + done[i], static_cast<unsigned>(r.len - done[i]),
                           r.offset + done[i]);
        io_uring_sqe_set_data64(sqe, i);
        ++queued;
      }
      while (queued > 0) {
        const int submitted = io_uring_submit(ring);
        if (submitted == -EINTR || submitted == -EAGAIN) continue;
        if (submitted <= 0) {
          // The ring cannot take these reads: reap what the kernel holds, then
          // rebuild the ring (dropping the unsubmitted entries).
          DrainAndReset(thread_ring, in_kernel);
          const int err = submitted < 0 ? -submitted : EIO;
          for (size_t i = 0; i < num_reqs; ++i) reqs[i].status = ReadError(reqs[i], err);
          return rocksdb::IOStatus::IOError("io_uring_submit: " + ErrnoText(err));
        }
        in_kernel += static_cast<unsigned>(submitted);
        queued -= static_cast<unsigned>(submitted);
      }
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_wait_cqe_nr(ring, &cqe, in_kernel);
      while (rc == -EINTR || rc == -EAGAIN) rc = io_uring_wait_cqe_nr(ring, &cqe, in_kernel);
      if (rc < 0) {
        DrainAndReset(thread_ring, in_kernel);
        return rocksdb::IOStatus::IOError("io_uring wait: " + ErrnoText(-rc));
      }
      unsigned head = 0;
      unsigned seen = 0;
      io_uring_for_each_cqe(ring, head, cqe) {
        ++seen;
        Complete(reqs, done, todo, static_cast<uint32_t>(io_uring_cqe_get_data64(cqe)), cqe->res);
      }
      io_uring_cq_advance(ring, seen);
      in_kernel -= seen;
    }
    for (size_t i = 0; i < num_reqs; ++i) {
      if (reqs[i].status.ok()) reqs[i].result = rocksdb::Slice(reqs[i].scratch, done[i]);
    }
    return rocksdb::IOStatus::OK();
  }

  // Accounts one completion `res` (bytes or -errno) of request `i`.
  void Complete(rocksdb::FSReadRequest* reqs, absl::InlinedVector<size_t, 64>& done,
                absl::InlinedVector<uint32_t, 64>& todo, uint32_t i, int res) const {
    rocksdb::FSReadRequest& r = reqs[i];
    if (res == -EINTR || res == -EAGAIN) {
      Bump(g_resubmits);
      todo.push_back(i);
      return;
    }
    if (res < 0) {
      r.status = ReadError(r, -res);
      return;
    }
    if (res == 0) return;  // end of file: the result is shorter
    done[i] += static_cast<size_t>(res);
    if (done[i] >= r.len) return;
    // A direct read that stops inside a sector stopped at the end of the file
    // (the rest cannot be asked for at an unaligned offset anyway).
    if (direct_ && done[i] % alignment_ != 0) return;
    Bump(g_resubmits);
    todo.push_back(i);
  }

  // Waits for `in_kernel` completions (their buffers belong to the caller),
  // then rebuilds the thread's ring.
  static void DrainAndReset(ThreadRing& thread_ring, unsigned in_kernel) {
    io_uring* ring = thread_ring.get();
    while (in_kernel > 0) {
      io_uring_cqe* cqe = nullptr;
      const int rc = io_uring_wait_cqe(ring, &cqe);
      if (rc == -EINTR || rc == -EAGAIN) continue;
      if (rc < 0) break;  // the ring is unusable: its teardown cancels the rest
      io_uring_cqe_seen(ring, cqe);
      --in_kernel;
    }
    thread_ring.Reset();
  }

  const int fd_;
  const std::string name_;
  const bool direct_;
  const size_t alignment_;
};

class IoUringFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit IoUringFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base)
      : FileSystemWrapper(base) {}

  const char* Name() const override { return "QuiverIoUringFileSystem"; }

  rocksdb::IOStatus NewRandomAccessFile(const std::string& fname,
                                        const rocksdb::FileOptions& options,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                                        rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSRandomAccessFile> base;
    rocksdb::IOStatus s = target()->NewRandomAccessFile(fname, options, &base, dbg);
    if (!s.ok()) return s;
    int flags = O_RDONLY | O_CLOEXEC;
    if (base->use_direct_io()) flags |= O_DIRECT;
    int fd = -1;
    do {
      fd = ::open(fname.c_str(), flags);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      *result = std::move(base);  // preads through the base file
      return rocksdb::IOStatus::OK();
    }
    *result = std::make_unique<IoUringRandomAccessFile>(std::move(base), fd, fname);
    return rocksdb::IOStatus::OK();
  }
};

bool ProbeIoUring() {
  io_uring ring{};
  if (io_uring_queue_init(4, &ring, 0) != 0) return false;
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  const bool ok = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_READ);
  if (probe != nullptr) io_uring_free_probe(probe);
  io_uring_queue_exit(&ring);
  return ok;
}

}  // namespace

bool IoUringSupported() {
  static const bool supported = ProbeIoUring();
  return supported;
}

bool IoUringDisabledByEnv() {
  const char* v = std::getenv("QUIVER_DISABLE_IO_URING");
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

std::shared_ptr<rocksdb::FileSystem> NewIoUringFileSystem(
    std::shared_ptr<rocksdb::FileSystem> base) {
  return std::make_shared<IoUringFileSystem>(base);
}

IoUringCounters GetIoUringCounters() {
  IoUringCounters c;
  c.multi_reads = g_multi_reads.load(std::memory_order_relaxed);
  c.requests = g_requests.load(std::memory_order_relaxed);
  c.resubmits = g_resubmits.load(std::memory_order_relaxed);
  c.fallbacks = g_fallbacks.load(std::memory_order_relaxed);
  c.single_reads = g_single_reads.load(std::memory_order_relaxed);
  return c;
}

}  // namespace quiver::storage
