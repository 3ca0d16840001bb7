// RowStore: a node's online rows in RocksDB (docs/architecture.md, "Storage").
//
// Layout: one RocksDB instance, one column family per feature view (named
// "fv:<view>"). Row key = partition (u32 big-endian) ‖ serialized entity key,
// so a partition is one contiguous key range. Row value (format 1):
//   u8 format=1 | i64 event_ts_us | i64 created_ts_us | u32 schema_version |
//   u16 n | n × u32 end offsets | values, each u8 type tag (0 = null) + payload
// (integers little-endian like every Quiver encoding; offsets relative to the
// start of the values area), so a read decodes only the requested features.
// The default column family holds store metadata: the partition count and each
// view's schema version, feature types and TTL, so a reopened store knows its
// views before EnsureView is called again.
//
// Last writer wins by (schema_version, event_ts_us, created_ts_us), then by
// the encoded value bytes so that exact ties are deterministic too (a row of a
// newer schema version always wins: older ones can no longer be read): every write is a RocksDB
// Merge and an associative merge operator keeps the greatest row, so the
// stored row is the same whatever order writes, retries and replays arrive in.
// TTL: a row with event_ts + ttl < now is returned as OUTSIDE_MAX_AGE and is
// dropped by a compaction filter (RocksDB CompactionFilter docs; ttl 0 means
// never expires). "now" comes from the injected clock.
//
// Reads (docs/architecture.md, "Storage"): tuned for point lookups — whole-key
// bloom filters (also on the memtable), a hash index inside data blocks,
// index and filter blocks pinned in the block cache, every SST file kept open,
// LZ4 when the RocksDB build has it. A batch is one RocksDB MultiGet, whose
// block reads per SST file are one MultiRead, served by io_uring when enabled
// (io_uring_fs.h).
//
// Bulk load (BeginIngest / IngestSession): rows already sorted by row key are
// streamed into SST files (RocksDB SstFileWriter) and ingested in one
// IngestExternalFile call (RocksDB wiki, "Creating and Ingesting SST files"):
// no memtable inserts, no WAL, no flush. Ingested entries are Merge operands of
// the same LWW merge operator, so a bulk load and Write combine as two Writes.
//
// Thread-safety: all RowStore methods are thread-safe (RocksDB's own
// guarantees; the view table is guarded by a shared mutex). An IngestSession
// takes one caller at a time. Methods block on disk I/O.
#ifndef QUIVER_STORAGE_ROW_STORE_H_
#define QUIVER_STORAGE_ROW_STORE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quiver/keys/value.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}

namespace quiver::storage {

// Returns the current time. unit: microseconds since the Unix epoch.
using Clock = std::function<int64_t()>;
int64_t SystemNowMicros();

struct RowStoreOptions {
  std::string path;  // RocksDB directory; created if missing
  uint32_t num_partitions = 4096;  // Q, a power of two; fixed for a store's life
  // unit: bytes. Index and filter blocks of every SST file are pinned in this
  // cache (about 2% of the stored bytes; they may exceed a small cache).
  uint64_t block_cache_bytes = 256ull << 20;
  Clock clock = SystemNowMicros;
  // unit: seconds. How often RocksDB rewrites old files so the TTL filter sees
  // them (periodic_compaction_seconds). 0 means RocksDB's default.
  uint64_t periodic_compaction_seconds = 24 * 3600;
  // Serve MultiGet's batched block reads through io_uring (io_uring_fs.h).
  // Used only when IoUringSupported() and QUIVER_DISABLE_IO_URING is unset;
  // otherwise the store falls back to RocksDB's preads (logged once).
  bool use_io_uring = true;
  // O_DIRECT reads of SST files (bypass the page cache; the block cache is
  // then the only cache of the store's data).
  bool use_direct_reads = false;
  // No background compactions (so no TTL filtering either): for reading a
  // fixed copy of a store, a checkpoint or a restored backup, whose rows must
  // stay exactly as they were copied. Such a store is not meant for writes.
  bool frozen = false;
  // RocksDB's compaction threads (its LOW pool) run at nice 19
  // (Env::LowerThreadPoolCPUPriority, CpuPriority::kLow), so that a
  // compaction after a bulk load or a partition move takes the CPU lookups
  // leave. Flushes (the HIGH pool) keep the process's priority: a late flush
  // stalls writes. The pool is the process's (Env::Default), so this holds
  // for every store of the process once one asked for it.
  bool low_priority_compactions = true;
};

// What the store needs to know of a feature view.
struct ViewSchema {
  std::string name;
  uint32_t schema_version = 0;
  std::vector<ValueType> feature_types;  // schema order
  std::chrono::seconds ttl{0};  // 0: never expires
};

// One row to write: every feature of the view, in schema order, either as
// `values` or, already encoded, as `packed_values`.
struct RowWrite {
  std::string entity_key;  // serialized (quiver/keys/entity_key.h)
  int64_t event_ts_us = 0;
  int64_t created_ts_us = 0;
  std::vector<Value> values;
  // When non-empty (and `values` empty): the features as WriteRow.
  // packed_values (quiver/keys/packed_values.h), checked cell by cell and
  // stored without decoding them (the node's write path). Not owned: the bytes
  // must outlive the Write or Append call that takes the row.
  std::string_view packed_values;
};

// One stored row as it is on disk: its row key (RowStore::RowKey) and its
// encoded value. What repair copies from one replica to another.
struct RawRow {
  std::string key;
  std::string value;
};

// A page of RowStore::ScanRaw.
struct RawScan {
  std::vector<RawRow> rows;  // in key order
  bool done = false;         // no row of the range follows the last one
};

enum class RowStatus { kPresent, kNotFound, kOutsideMaxAge };

// What a set of stored rows holds, in a form two copies can be compared by
// (backups, restores, replicas): a row count and the sum (mod 2^64) of
// RowStore::RowChecksum over the rows. A sum does not depend on the order of
// the rows, so digests of parts add up to the digest of the whole, and it
// does not depend on the partition count (the partition prefix is not
// hashed), so a store restored onto another cluster shape digests the same.
struct PartitionDigest {
  uint32_t partition = 0;
  uint64_t rows = 0;
  uint64_t checksum = 0;
};

struct ViewDigest {
  std::string view;
  uint64_t rows = 0;      // sum over `partitions`
  uint64_t checksum = 0;  // sum over `partitions`, mod 2^64
  std::vector<PartitionDigest> partitions;  // non-empty partitions only, ascending
};

// One RowStore::CreateBackup.
struct BackupResult {
  uint32_t backup_id = 0;    // RocksDB BackupEngine's id, within its directory
  uint64_t size_bytes = 0;   // unit: bytes; the files the backup refers to
  uint64_t new_bytes = 0;    // unit: bytes; what this backup added to the directory
  std::vector<ViewDigest> views;  // the backed-up rows, digested (every view with a schema)
};

// Called by MultiGetCells once per entity key, in order. `index` is the key's
// position; `event_ts_us` is 0 for kNotFound. For kPresent rows, `cells[j]`
// are the stored bytes of feature feature_indices[j] exactly as in the row's
// values area (u8 type tag, 0 = null with no payload, else the declared type's
// tag followed by the AppendPayload bytes of quiver/keys/value.h), so
// DecodePayload(type, cell.substr(1)) decodes a non-null cell. For other
// statuses `cells` is empty. Every view is valid only during the call.
using RowVisitor = absl::FunctionRef<void(size_t index, RowStatus status, int64_t event_ts_us,
                                          std::span<const std::string_view> cells)>;

struct RowRead {
  RowStatus status = RowStatus::kNotFound;
  int64_t event_ts_us = 0;  // 0 unless found
  int64_t created_ts_us = 0;
  std::vector<Value> values;  // one per requested feature index; empty unless kPresent
};

// One bulk load into one view, from RowStore::BeginIngest. Rows are validated
// like Write, encoded at the schema version the session started with, and
// written to SST files in a per-session scratch directory; nothing is visible
// until Commit, which is atomic. Files roll over every ~256 MiB (the view's
// target SST size); consecutive files never overlap.
// Thread-safety: not thread-safe (one caller at a time); sessions of one store
// may run in parallel, also with Write. The RowStore must outlive the session.
class IngestSession {
 public:
  // A session not committed aborts: its files are deleted, nothing becomes
  // visible.
  ~IngestSession();
  IngestSession(const IngestSession&) = delete;
  IngestSession& operator=(const IngestSession&) = delete;

  // Appends rows of the session's view (every feature, in schema order, as in
  // Write). Row keys (RowStore::RowKey, compared bytewise) must be
  // non-decreasing across all Append calls of the session. Rows with equal
  // keys (consecutive, possibly across calls) are reduced to the
  // last-writer-wins winner by the merge operator's own rule (greatest
  // (schema_version, event_ts, created_ts), then greatest encoded bytes), so
  // every replica keeps the same row whatever order ties arrived in. Blocks on
  // file writes.
  // Errors: kInvalidArgument (shape, type or key size as in Write, or a key
  // lower than the previous row's), kResourceExhausted (disk full), kInternal
  // — after any of them the session has aborted (files deleted) and later
  // calls fail with kFailedPrecondition; kFailedPrecondition (the session was
  // committed, failed or aborted).
  absl::Status Append(std::span<const RowWrite> rows);

  // Rows passed to successful Append calls, before the equal-key reduction.
  uint64_t rows_appended() const;

  // Finishes the SST files and ingests them in one IngestExternalFile call
  // (move_files, allow_global_seqno, allow_blocking_flush: a memtable holding
  // overlapping rows is flushed first, files overlapping stored SSTs get a
  // global sequence number above them). Atomic: every row of the session
  // becomes visible, or none. Ingested rows are Merge operands, so an
  // ingested row older (in LWW order) than the stored one loses, as with
  // Write. An empty session commits as a no-op. Durable once it returns OK
  // (files synced, recorded in the MANIFEST). Ends the session whatever the
  // outcome: the scratch files are gone afterwards. Blocks on the memtable
  // flush if one is needed; RocksDB holds back the store's writes while it
  // installs the files.
  // Errors: kUnavailable (the view's schema version changed since BeginIngest;
  // nothing ingested; retry with a new session), kFailedPrecondition (already
  // committed, failed or aborted), kResourceExhausted (disk full), kInternal.
  absl::Status Commit();

 private:
  friend class RowStore;
  class Impl;
  explicit IngestSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class RowStore {
 public:
  // Opens or creates the store, with one column family per view found on disk.
  // Errors: kInvalidArgument (bad options, or num_partitions differs from the
  // one the store was created with), kUnavailable / kInternal (RocksDB could
  // not open, e.g. another process holds its lock; the message carries
  // RocksDB's), kDataLoss (unreadable view metadata).
  // Deletes what an interrupted bulk load left in the scratch directory
  // (options.path + ".ingest"), once the store's lock is held.
  static absl::StatusOr<std::unique_ptr<RowStore>> Open(RowStoreOptions options);

  // The stored key of a row: partition of `entity_key` among `num_partitions`
  // (the store's, a power of two) as u32 big-endian ‖ `entity_key`. RocksDB
  // orders a view's rows bytewise by it; IngestSession::Append needs rows in
  // this order. Pure function, thread-safe.
  static std::string RowKey(std::string_view entity_key, uint32_t num_partitions);

  // The entity key inside a RowKey result (everything after the partition);
  // empty for a string too short to be one. Pure function, thread-safe.
  static std::string_view EntityKeyOfRowKey(std::string_view row_key);

  ~RowStore();
  RowStore(const RowStore&) = delete;
  RowStore& operator=(const RowStore&) = delete;

  // Creates the view's column family if missing and records its schema and
  // TTL (TTL changes apply to later reads and compactions). Idempotent; a
  // schema version lower than the recorded one is ignored (a caller holding
  // an older registry never moves the view back).
  // Rows written under an older schema_version read as kNotFound afterwards.
  // Errors: kInvalidArgument (empty name, invalid type, > 65535 features,
  // negative TTL, or other feature types under the same schema_version),
  // kResourceExhausted / kInternal (RocksDB).
  absl::Status EnsureView(const ViewSchema& schema);

  // Applies `rows` atomically (one WriteBatch of Merges). Every row must carry
  // exactly the view's feature count with values valid for their types.
  // Each value's type must equal the declared one (nulls included, e.g.
  // Value::Null(kInt64)); entity keys are 1..kMaxEntityKeyBytes bytes.
  // Durable against a process crash (WAL, not fsynced per write).
  // `expected_schema_version` (0: any) is the schema version the caller
  // validated the rows against; when the store's view is at another version
  // (a registry change racing with the request) nothing is written.
  // Errors: kNotFound (unknown view), kInvalidArgument (shape or type; nothing
  // written), kUnavailable (schema version differs; retryable),
  // kResourceExhausted (disk full; nothing written), kInternal.
  absl::Status Write(std::string_view view, std::span<const RowWrite> rows,
                     uint32_t expected_schema_version = 0);

  // Batched lookup: one RowRead per entity key, in order. `feature_indices`
  // selects and orders the decoded features (schema indices; repeats allowed).
  // A row written under another schema version reads as kNotFound. An expired
  // row reads as kOutsideMaxAge with its timestamps set and no values.
  // `expected_schema_version` (0: any) is the schema version the caller took
  // `feature_indices` from; another version of the view is kUnavailable, so
  // indices of one schema are never applied to rows of another.
  // Errors: kNotFound (unknown view), kInvalidArgument (index out of range),
  // kUnavailable (schema version differs; retryable), kDataLoss (corrupt
  // stored row), kInternal.
  absl::StatusOr<std::vector<RowRead>> MultiGet(std::string_view view,
                                                std::span<const std::string> entity_keys,
                                                std::span<const int> feature_indices,
                                                uint32_t expected_schema_version = 0);

  // Zero-copy batched lookup, the node's hot path: the same lookup, rules and
  // errors as MultiGet, but instead of decoding values it hands `visit` the
  // stored bytes of the requested features (see RowVisitor). Tags are checked
  // (0 or the declared type, else kDataLoss), payloads are not decoded.
  // Visits every key in order, exactly once, unless an error is returned:
  // then the caller discards what it was given (visits may have happened).
  // No heap allocation per key.
  absl::Status MultiGetCells(std::string_view view, std::span<const std::string_view> entity_keys,
                             std::span<const int> feature_indices,
                             uint32_t expected_schema_version, RowVisitor visit);

  // Starts a bulk load into `view` (see IngestSession). Its rows carry the
  // view's current schema version; `expected_schema_version` as in Write (0:
  // any, else it must equal the view's version). SST files live in
  // options.path + ".ingest"/<session>/ until Commit moves them into the DB.
  // Errors: kNotFound (unknown view), kUnavailable (schema version differs;
  // retryable), kInternal (scratch directory).
  absl::StatusOr<std::unique_ptr<IngestSession>> BeginIngest(std::string_view view,
                                                             uint32_t expected_schema_version = 0);

  // Number of rows (not expired, any schema version) of `view`, by a full
  // scan; for tests and verify. Errors: kNotFound, kDataLoss (corrupt row).
  absl::StatusOr<uint64_t> CountRows(std::string_view view);

  // Repair, source side: the stored rows of `view` whose partition is in
  // [partition_begin, partition_end), in key order, starting after row key
  // `after` (empty: from the range's start), until about `max_bytes` of keys
  // and values (at least one row). Values are the merged (last-writer-wins)
  // rows, expired ones and any schema version included: the receiver keeps
  // the same rows its peer has. Reads a consistent snapshot per call.
  // Errors: kNotFound (unknown view), kInvalidArgument (empty or
  // out-of-range partition range), kInternal (RocksDB).
  absl::StatusOr<RawScan> ScanRaw(std::string_view view, uint32_t partition_begin,
                                  uint32_t partition_end, std::string_view after,
                                  size_t max_bytes);

  // Repair, receiving side: merges rows another replica's ScanRaw returned,
  // by the same last-writer-wins rule as Write (a stored newer row stays).
  // Every key must be a RowKey of this store's partition count and every
  // value a well-formed row; one bad row rejects the whole batch, nothing
  // written. Errors: kNotFound (unknown view), kInvalidArgument (bad key or
  // row, naming its index), kInternal (RocksDB).
  absl::Status MergeRaw(std::string_view view, std::span<const RawRow> rows);

  // Rebalancing cleanup (docs/architecture.md, "Cleanup"): deletes every row
  // of `partitions` in every view's column family, one RocksDB DeleteRange of
  // each run of consecutive partitions' key prefixes (u32 big-endian
  // partition), so it costs a range tombstone per run, not a write per row;
  // compactions reclaim the space later. Duplicates and any order are
  // accepted; an empty span is a no-op. Not atomic across views (a failure
  // may leave some views deleted; deleting again is harmless). Blocks on the
  // WAL write. The tombstones stay in the memtables: call FlushViews after.
  // Errors: kInvalidArgument (a partition >= num_partitions; nothing
  // deleted), kResourceExhausted (disk full), kInternal (RocksDB).
  absl::Status DeletePartitions(std::span<const uint32_t> partitions);

  // Flushes every view's memtable to an SST file and waits for it. After
  // DeletePartitions: range tombstones in a memtable slow every read and
  // iterator of the column family (RocksDB's DeleteRange wiki: they are
  // fragmented per read there, once per file after a flush). Needs no
  // exclusion from writes. Errors: kResourceExhausted (disk full), kInternal.
  absl::Status FlushViews();

  // The partitions that hold at least one stored row in some view (expired
  // rows and rows of any schema version included), ascending. One seek per
  // non-empty partition per view. Errors: kInternal (RocksDB).
  absl::StatusOr<std::vector<uint32_t>> PartitionsWithRows();

  // Forces a full compaction of `view` (runs the TTL filter now). Rows the
  // filter cannot parse are kept (reads report them as kDataLoss).
  absl::Status CompactView(std::string_view view);

  // Q, the partition count the store was opened with. Thread-safe.
  uint32_t num_partitions() const;

  // The views the store holds a schema for, by name. Thread-safe.
  std::vector<std::string> ViewNames() const;

  // The digest of every view (see ViewDigest), by a full scan; rows of any
  // schema version, expired ones included (what ScanRaw returns).
  // Errors: kInternal (RocksDB), kDataLoss (a malformed row key).
  absl::StatusOr<std::vector<ViewDigest>> Digest();

  // A row's term in a digest: XXH3-64 of the value, seeded with XXH3-64 of
  // the entity key. Pure function, thread-safe.
  static uint64_t RowChecksum(std::string_view entity_key, std::string_view value);

  // A consistent point-in-time copy of the whole store in `dir`, which must
  // not exist yet (RocksDB Checkpoint, wiki "Checkpoints": memtables are
  // flushed first; SST files are hard links when `dir` is on the same
  // filesystem, copies otherwise). Errors: kAlreadyExists, kResourceExhausted
  // (disk full), kInternal.
  absl::Status Checkpoint(const std::string& dir);

  // Backs the store up into `backup_dir`, a RocksDB BackupEngine directory
  // (created if missing) that successive backups of this store share: an
  // SST file the directory already holds is not copied again
  // (share_table_files with checksum-named files, RocksDB wiki "How to
  // backup RocksDB"), so backups after the first are incremental. The
  // backup is of a checkpoint (options.path + ".backup", removed afterwards),
  // and the returned digest is of that same checkpoint, so the two agree
  // whatever is written meanwhile. One backup at a time per store (a second
  // call waits). Blocks on copying files.
  // Errors: kInvalidArgument (relative or empty backup_dir),
  // kResourceExhausted (disk full), kInternal (RocksDB; the message carries
  // its status). A failed backup leaves no new backup id behind.
  absl::StatusOr<BackupResult> CreateBackup(const std::string& backup_dir);

  // Restores backup `backup_id` of the BackupEngine directory `backup_dir`
  // into `db_dir` (created; must be empty or missing), which RowStore::Open
  // then opens (with the partition count the backed-up store had). The
  // backup's files are checked against their recorded checksums while
  // copying. Errors: kNotFound (no such backup), kDataLoss (a file of the
  // backup is corrupt or missing), kInvalidArgument (db_dir not empty),
  // kInternal.
  static absl::Status RestoreBackup(const std::string& backup_dir, uint32_t backup_id,
                                    const std::string& db_dir);

 private:
  class Impl;
  explicit RowStore(std::unique_ptr<Impl> impl);
  rocksdb::DB* rocks() const;                // for row_store_backup.cc
  // Every view's column family, for row_store_partitions.cc; the handles
  // live as long as the store.
  std::vector<rocksdb::ColumnFamilyHandle*> ViewFamilies() const;
  const RowStoreOptions& options() const;  // for row_store_backup.cc
  std::unique_ptr<Impl> impl_;
  std::mutex backup_mu_;  // one CreateBackup at a time
};

}  // namespace quiver::storage

#endif  // QUIVER_STORAGE_ROW_STORE_H_
