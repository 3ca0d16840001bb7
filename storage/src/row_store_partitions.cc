// RowStore's whole-partition operations (row_store.h): the rebalancing
// cleanup's DeletePartitions and the PartitionsWithRows census. Kept apart
// from the read and write paths in row_store.cc; uses only the store's
// RocksDB handle and its views' column families.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quiver/storage/row_store.h"
#include "rocks_status.h"
#include "rocksdb/db.h"

namespace quiver::storage {
namespace {

using internal::FromRocks;

// The first 4 bytes of every row key of partition `p`: u32 big-endian. For
// p == Q it is the exclusive end of partition Q - 1 (Q < 2^32).
std::string PartitionPrefix(uint64_t p) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((p >> shift) & 0xff));
  return out;
}

uint32_t PartitionOfRowKey(std::string_view key) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(key[0])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(key[1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(key[2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(key[3]));
}

}  // namespace

absl::Status RowStore::DeletePartitions(std::span<const uint32_t> partitions) {
  const uint32_t q = num_partitions();
  std::vector<uint32_t> sorted(partitions.begin(), partitions.end());
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  if (!sorted.empty() && sorted.back() >= q) {
    return absl::InvalidArgumentError(
        absl::StrCat("partition ", sorted.back(), " is out of range (the store has ", q, ")"));
  }
  // Runs of consecutive partitions [begin, end).
  std::vector<std::pair<uint32_t, uint32_t>> runs;
  for (uint32_t p : sorted) {
    if (!runs.empty() && runs.back().second == p) {
      runs.back().second = p + 1;
    } else {
      runs.emplace_back(p, p + 1);
    }
  }
  rocksdb::DB* db = rocks();
  for (rocksdb::ColumnFamilyHandle* cf : ViewFamilies()) {
    for (const auto& [begin, end] : runs) {
      const std::string from = PartitionPrefix(begin);
      const std::string to = PartitionPrefix(end);
      rocksdb::Status s = db->DeleteRange(rocksdb::WriteOptions(), cf, from, to);
      if (!s.ok()) {
        return FromRocks(s, absl::StrCat("deleting partitions [", begin, ", ", end, ") of ",
                                         cf->GetName()));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status RowStore::FlushViews() {
  rocksdb::DB* db = rocks();
  for (rocksdb::ColumnFamilyHandle* cf : ViewFamilies()) {
    rocksdb::FlushOptions fo;
    fo.allow_write_stall = true;
    if (rocksdb::Status s = db->Flush(fo, cf); !s.ok()) {
      return FromRocks(s, absl::StrCat("flushing ", cf->GetName()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint32_t>> RowStore::PartitionsWithRows() {
  const uint32_t q = num_partitions();
  std::vector<bool> held(q, false);
  rocksdb::DB* db = rocks();
  for (rocksdb::ColumnFamilyHandle* cf : ViewFamilies()) {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
    // Skip-scan: the first key at or after partition p names the next
    // non-empty partition; then jump past it.
    for (uint64_t p = 0; p < q;) {
      it->Seek(PartitionPrefix(p));
      if (!it->Valid()) break;
      const std::string_view key = it->key().ToStringView();
      if (key.size() < 4) {  // not a row key (none is written): look past it
        ++p;
        continue;
      }
      const uint32_t found = PartitionOfRowKey(key);
      if (found >= q) break;
      held[found] = true;
      p = static_cast<uint64_t>(found) + 1;
    }
    if (absl::Status st = FromRocks(it->status(), absl::StrCat("scanning ", cf->GetName()));
        !st.ok()) {
      return st;
    }
  }
  std::vector<uint32_t> out;
  for (uint32_t p = 0; p < q; ++p) {
    if (held[p]) out.push_back(p);
  }
  return out;
}

}  // namespace quiver::storage
