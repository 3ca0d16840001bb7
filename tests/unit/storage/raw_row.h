// Writes bytes straight through RocksDB at the key a RowStore gives a row
// (partition u32 big-endian ‖ entity key, in column family "fv:<view>"), so
// tests can plant corrupt rows. The store at `db_path` must be closed.
#ifndef QUIVER_TESTS_UNIT_STORAGE_RAW_ROW_H_
#define QUIVER_TESTS_UNIT_STORAGE_RAW_ROW_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "quiver/keys/entity_key.h"
#include "rocksdb/db.h"

namespace quiver::testing {

inline void PutRawRow(const std::string& db_path, uint32_t num_partitions, const std::string& view,
                      const std::string& entity_key, const std::string& bytes) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), db_path, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const std::string& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), db_path, cfs, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  const uint32_t p = PartitionOf(entity_key, num_partitions);
  std::string row_key = {static_cast<char>(p >> 24), static_cast<char>(p >> 16),
                         static_cast<char>(p >> 8), static_cast<char>(p)};
  row_key += entity_key;
  const auto it = std::find(names.begin(), names.end(), "fv:" + view);
  ASSERT_NE(it, names.end());
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[it - names.begin()], row_key, bytes).ok());
  for (auto* h : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
  ASSERT_TRUE(db->Close().ok());
}

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_UNIT_STORAGE_RAW_ROW_H_
