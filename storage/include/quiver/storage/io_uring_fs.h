// A RocksDB FileSystem whose random-access files serve MultiRead through
// io_uring (docs/architecture.md, "Storage"; DESIGN.md "io_uring").
//
// RocksDB's MultiGet reads the data blocks that one SST file holds for a batch
// of keys with one FSRandomAccessFile::MultiRead call. Debian's RocksDB 7.8 is
// built without liburing, so its posix MultiRead is a loop of blocking preads.
// The files of this FileSystem submit every request of a MultiRead at once on
// the calling thread's ring (one io_uring per thread, created on first use)
// and wait for all of them, so the device works on the whole batch in
// parallel. Everything else (Read, writes, directories, ...) is the base
// FileSystem's.
//
// Each wrapped file opens its own descriptor for the same path with the same
// flags (O_DIRECT when FileOptions::use_direct_reads): RocksDB's posix file
// does not expose its descriptor. With direct reads, RocksDB already aligns
// offsets, lengths and buffers of MultiRead requests (RandomAccessFileReader).
//
// Thread-safety: the FileSystem and its files are safe for concurrent use;
// rings are thread-local and never shared.
#ifndef QUIVER_STORAGE_IO_URING_FS_H_
#define QUIVER_STORAGE_IO_URING_FS_H_

#include <cstdint>
#include <memory>

namespace rocksdb {
class FileSystem;
}  // namespace rocksdb

namespace quiver::storage {

// True when this process may create an io_uring (probed once, on the first
// call: io_uring_queue_init fails with ENOSYS or EPERM in some sandboxes and
// containers). Thread-safe.
bool IoUringSupported();

// True when the environment variable QUIVER_DISABLE_IO_URING is set to a
// non-empty value other than "0" (operators and tests force the pread path).
bool IoUringDisabledByEnv();

// Wraps `base`: its random-access files implement MultiRead with io_uring.
// When a thread cannot create its ring, or a file cannot be opened a second
// time, reads fall back to the base file (same results, preads).
// `base` must not be null.
std::shared_ptr<rocksdb::FileSystem> NewIoUringFileSystem(std::shared_ptr<rocksdb::FileSystem> base);

// Process-wide counters of io_uring MultiRead calls, for benchmarks and tests
// (relaxed atomics: a snapshot, not a synchronization point).
struct IoUringCounters {
  uint64_t multi_reads = 0;  // MultiRead calls served by a ring
  uint64_t requests = 0;     // read requests in those calls
  uint64_t resubmits = 0;    // short or interrupted reads submitted again
  uint64_t fallbacks = 0;    // MultiRead calls that went to the base file (no ring)
  uint64_t single_reads = 0;  // MultiRead calls of one request (a plain pread)
};
IoUringCounters GetIoUringCounters();

}  // namespace quiver::storage

#endif  // QUIVER_STORAGE_IO_URING_FS_H_
