// quiver-bench-uring: cold batched lookups of a RowStore through the io_uring
// FileSystem versus RocksDB's default (pread) FileSystem.
//
//   quiver-bench-uring [--quick] [--dir DIR] [--rows N] [--keys 8,64,256]
//                      [--rounds N] [--cache-mb 8]
//
// Builds a store of --rows rows (~240 bytes each, random values, so the data
// is many times the block cache) unless DIR already holds one, compacts it,
// and hard-links it into a second directory. Then opens both copies with
// O_DIRECT reads and a small block cache — one through io_uring, one through
// preads — and times MultiGetCells of random keys, alternating the two stores
// round by round so that machine noise hits both alike. Prints per batch size:
//   uring keys=K rounds=N pread_p50_us=… pread_p99_us=… uring_p50_us=…
//         uring_p99_us=… ratio_p50=<pread/uring> ratio_p99=…
// plus how many SST files there are and how many block reads one io_uring
// MultiRead carried (RocksDB issues one MultiRead per SST file per batch).
// Without --dir the store lives in a temporary directory removed at exit.
// Exit 1 on any error (a failed lookup, a result that differs between paths).
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "quiver/keys/entity_key.h"
#include "quiver/storage/io_uring_fs.h"
#include "quiver/storage/row_store.h"
#include "rocksdb/perf_context.h"
#include "rocksdb/perf_level.h"

namespace {

namespace fs = std::filesystem;
using quiver::Value;
using quiver::ValueType;
using quiver::storage::RowStatus;
using quiver::storage::RowStore;
using quiver::storage::RowStoreOptions;
using quiver::storage::RowWrite;
using quiver::storage::ViewSchema;
using SteadyClock = std::chrono::steady_clock;

constexpr char kView[] = "bench";
constexpr int kInts = 6;
constexpr int kDoubles = 6;
constexpr int kStrings = 2;
constexpr int kBools = 2;
constexpr size_t kStringBytes = 20;
constexpr int kBuildBatch = 20000;

struct Args {
  bool quick = false;
  std::string dir;
  int64_t rows = 2'000'000;
  std::vector<int> keys = {64};
  int64_t rounds = 2000;
  int64_t cache_mb = 8;
};

int Fail(const std::string& msg) {
  std::fprintf(stderr, "quiver-bench-uring: %s\n", msg.c_str());
  return 1;
}

bool ParseArgs(int argc, char** argv, Args* a, std::string* err) {
  bool rows_set = false;
  bool rounds_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--quick") {
      a->quick = true;
      continue;
    }
    if (i + 1 >= argc) {
      *err = "missing value after " + flag;
      return false;
    }
    const std::string value = argv[++i];
    int64_t n = 0;
    if (flag == "--dir") {
      a->dir = value;
    } else if (flag == "--keys") {
      a->keys.clear();
      for (absl::string_view part : absl::StrSplit(value, ',')) {
        int k = 0;
        if (!absl::SimpleAtoi(part, &k) || k < 1) {
          *err = "bad --keys " + value;
          return false;
        }
        a->keys.push_back(k);
      }
    } else if (flag == "--rows" || flag == "--rounds" || flag == "--cache-mb") {
      if (!absl::SimpleAtoi(value, &n) || n < 1) {
        *err = "bad " + flag + " " + value;
        return false;
      }
      if (flag == "--rows") a->rows = n, rows_set = true;
      if (flag == "--rounds") a->rounds = n, rounds_set = true;
      if (flag == "--cache-mb") a->cache_mb = n;
    } else {
      *err = "unknown flag " + flag;
      return false;
    }
  }
  if (a->quick && !rows_set) a->rows = 200'000;
  if (a->quick && !rounds_set) a->rounds = 300;
  return true;
}

std::string KeyOf(int64_t id) {
  return *quiver::EncodeEntityKey({{"id", Value::Int64(id)}});
}

ViewSchema Schema() {
  ViewSchema s{kView, 1, {}, std::chrono::seconds(0)};
  for (int i = 0; i < kInts; ++i) s.feature_types.push_back(ValueType::kInt64);
  for (int i = 0; i < kDoubles; ++i) s.feature_types.push_back(ValueType::kDouble);
  for (int i = 0; i < kStrings; ++i) s.feature_types.push_back(ValueType::kString);
  for (int i = 0; i < kBools; ++i) s.feature_types.push_back(ValueType::kBool);
  return s;
}

RowStoreOptions StoreOptions(const std::string& path, uint64_t cache_bytes, bool uring,
                             bool direct) {
  RowStoreOptions o;
  o.path = path;
  o.block_cache_bytes = cache_bytes;
  o.use_io_uring = uring;
  o.use_direct_reads = direct;
  return o;
}

// Writes `rows` random rows in large batches, then compacts. Prints the write
// rate (RowStore::Write, the materialization path).
absl::Status Build(const std::string& path, int64_t rows) {
  absl::StatusOr<std::unique_ptr<RowStore>> store =
      RowStore::Open(StoreOptions(path, 64ull << 20, false, false));
  if (!store.ok()) return store.status();
  if (absl::Status st = (*store)->EnsureView(Schema()); !st.ok()) return st;
  std::mt19937_64 rng(42);
  std::vector<RowWrite> batch(kBuildBatch);
  const auto t0 = SteadyClock::now();
  double write_s = 0;
  for (int64_t begin = 0; begin < rows; begin += kBuildBatch) {
    const int64_t end = std::min(rows, begin + kBuildBatch);
    batch.resize(static_cast<size_t>(end - begin));
    for (int64_t id = begin; id < end; ++id) {
      RowWrite& w = batch[static_cast<size_t>(id - begin)];
      w.entity_key = KeyOf(id);
      w.event_ts_us = 1'700'000'000'000'000 + id;
      w.values.clear();
      for (int i = 0; i < kInts; ++i) w.values.push_back(Value::Int64(static_cast<int64_t>(rng())));
      for (int i = 0; i < kDoubles; ++i) {
        w.values.push_back(Value::Double(static_cast<double>(rng() % 1'000'000'007) / 7.0));
      }
      for (int i = 0; i < kStrings; ++i) {
        std::string s(kStringBytes, ' ');
        for (char& c : s) c = static_cast<char>('a' + rng() % 26);
        w.values.push_back(Value::String(std::move(s)));
      }
      for (int i = 0; i < kBools; ++i) w.values.push_back(Value::Bool(rng() & 1));
    }
    const auto w0 = SteadyClock::now();
    if (absl::Status st = (*store)->Write(kView, batch); !st.ok()) return st;
    write_s += std::chrono::duration<double>(SteadyClock::now() - w0).count();
  }
  const auto t1 = SteadyClock::now();
  if (absl::Status st = (*store)->CompactView(kView); !st.ok()) return st;
  const double total_s = std::chrono::duration<double>(t1 - t0).count();
  const double compact_s = std::chrono::duration<double>(SteadyClock::now() - t1).count();
  std::printf("build rows=%lld write_rows_per_s=%.0f (RowStore::Write only) total_s=%.1f "
              "compact_s=%.1f\n",
              static_cast<long long>(rows), static_cast<double>(rows) / write_s, total_s,
              compact_s);
  return absl::OkStatus();
}

// A second directory holding the same store: SST files hard-linked (same
// disk blocks), the small metadata files copied.
absl::Status LinkCopy(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::remove_all(to, ec);
  fs::create_directories(to, ec);
  if (ec) return absl::InternalError("cannot create " + to + ": " + ec.message());
  for (const fs::directory_entry& e : fs::directory_iterator(from)) {
    const fs::path name = e.path().filename();
    if (name == "LOCK" || !e.is_regular_file()) continue;
    if (e.path().extension() == ".sst") {
      fs::create_hard_link(e.path(), fs::path(to) / name, ec);
    } else {
      fs::copy_file(e.path(), fs::path(to) / name, ec);
    }
    if (ec) return absl::InternalError("cannot copy " + e.path().string() + ": " + ec.message());
  }
  return absl::OkStatus();
}

struct Lookup {
  int64_t micros = 0;
  uint64_t present = 0;
  uint64_t bytes = 0;  // cell bytes, a checksum of sorts
  uint64_t blocks = 0;  // RocksDB block reads (PerfContext)
};

absl::StatusOr<Lookup> TimedLookup(RowStore& store, const std::vector<std::string>& keys,
                                   std::span<const int> features) {
  std::vector<std::string_view> views(keys.begin(), keys.end());
  Lookup out;
  rocksdb::get_perf_context()->Reset();
  const auto t0 = SteadyClock::now();
  absl::Status st = store.MultiGetCells(
      kView, views, features, 0,
      [&](size_t, RowStatus status, int64_t, std::span<const std::string_view> cells) {
        if (status != RowStatus::kPresent) return;
        ++out.present;
        for (std::string_view c : cells) out.bytes += c.size();
      });
  out.micros = std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - t0)
                   .count();
  out.blocks = rocksdb::get_perf_context()->block_read_count;
  if (!st.ok()) return st;
  return out;
}

int64_t Percentile(std::vector<int64_t> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

int Run(const Args& args) {
  if (!quiver::storage::IoUringSupported()) return Fail("io_uring is not available here");
  std::string root = args.dir;
  bool temp = false;
  if (root.empty()) {
    std::string tmpl = (fs::temp_directory_path() / "quiver-bench-uring-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return Fail("cannot create a temporary directory");
    root = tmpl;
    temp = true;
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      if (!dir.empty()) fs::remove_all(dir, ec);
    }
  } cleanup{temp ? root : ""};
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return Fail("cannot create " + root + ": " + ec.message());
  const std::string primary = root + "/store";
  const std::string copy = root + "/store-copy";
  if (!fs::exists(primary + "/CURRENT")) {
    if (absl::Status st = Build(primary, args.rows); !st.ok()) return Fail(st.ToString());
  }
  if (absl::Status st = LinkCopy(primary, copy); !st.ok()) return Fail(st.ToString());
  uint64_t sst_files = 0;
  uint64_t sst_bytes = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(primary)) {
    if (e.path().extension() == ".sst") ++sst_files, sst_bytes += e.file_size();
  }
  const uint64_t cache = static_cast<uint64_t>(args.cache_mb) << 20;
  auto uring = RowStore::Open(StoreOptions(primary, cache, true, true));
  if (!uring.ok()) return Fail(uring.status().ToString());
  auto pread = RowStore::Open(StoreOptions(copy, cache, false, true));
  if (!pread.ok()) return Fail(pread.status().ToString());
  for (RowStore* s : {uring->get(), pread->get()}) {
    if (absl::Status st = s->EnsureView(Schema()); !st.ok()) return Fail(st.ToString());
  }
  absl::StatusOr<uint64_t> rows = (*uring)->CountRows(kView);
  if (!rows.ok()) return Fail(rows.status().ToString());
  if (*rows == 0) return Fail("the store is empty");
  std::printf("store rows=%llu sst_files=%llu sst_mib=%.0f cache_mib=%lld direct_reads=1\n",
              static_cast<unsigned long long>(*rows), static_cast<unsigned long long>(sst_files),
              static_cast<double>(sst_bytes) / (1 << 20), static_cast<long long>(args.cache_mb));

  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kEnableCount);
  std::vector<int> features(Schema().feature_types.size());
  for (size_t i = 0; i < features.size(); ++i) features[i] = static_cast<int>(i);
  std::mt19937_64 rng(7);
  for (int k : args.keys) {
    std::vector<int64_t> t_uring;
    std::vector<int64_t> t_pread;
    uint64_t blocks_uring = 0;
    uint64_t blocks_pread = 0;
    const quiver::storage::IoUringCounters before = quiver::storage::GetIoUringCounters();
    std::vector<std::string> keys(static_cast<size_t>(k));
    for (int64_t round = 0; round < args.rounds; ++round) {
      // Each store reads the same keys; which one goes first alternates.
      for (std::string& key : keys) key = KeyOf(static_cast<int64_t>(rng() % *rows));
      for (int pass = 0; pass < 2; ++pass) {
        const bool use_uring = (pass == 0) == (round % 2 == 0);
        absl::StatusOr<Lookup> l = TimedLookup(use_uring ? **uring : **pread, keys, features);
        if (!l.ok()) return Fail(l.status().ToString());
        if (l->present != keys.size()) return Fail("a written row was not found");
        (use_uring ? t_uring : t_pread).push_back(l->micros);
        (use_uring ? blocks_uring : blocks_pread) += l->blocks;
      }
    }
    const quiver::storage::IoUringCounters after = quiver::storage::GetIoUringCounters();
    const uint64_t multi_reads = after.multi_reads - before.multi_reads;
    const uint64_t requests = after.requests - before.requests;
    const int64_t p50_pread = Percentile(t_pread, 0.5);
    const int64_t p99_pread = Percentile(t_pread, 0.99);
    const int64_t p50_uring = Percentile(t_uring, 0.5);
    const int64_t p99_uring = Percentile(t_uring, 0.99);
    std::printf(
        "uring keys=%d rounds=%lld pread_p50_us=%lld pread_p99_us=%lld uring_p50_us=%lld "
        "uring_p99_us=%lld ratio_p50=%.2f ratio_p99=%.2f\n",
        k, static_cast<long long>(args.rounds), static_cast<long long>(p50_pread),
        static_cast<long long>(p99_pread), static_cast<long long>(p50_uring),
        static_cast<long long>(p99_uring),
        static_cast<double>(p50_pread) / static_cast<double>(std::max<int64_t>(1, p50_uring)),
        static_cast<double>(p99_pread) / static_cast<double>(std::max<int64_t>(1, p99_uring)));
    std::printf(
        "  blocks_per_batch pread=%.1f uring=%.1f; io_uring multi_reads_per_batch=%.1f "
        "requests_per_multi_read=%.1f single_request_multi_reads_per_batch=%.1f resubmits=%llu "
        "fallbacks=%llu\n",
        static_cast<double>(blocks_pread) / static_cast<double>(args.rounds),
        static_cast<double>(blocks_uring) / static_cast<double>(args.rounds),
        static_cast<double>(multi_reads) / static_cast<double>(args.rounds),
        multi_reads == 0 ? 0.0 : static_cast<double>(requests) / static_cast<double>(multi_reads),
        static_cast<double>(after.single_reads - before.single_reads) /
            static_cast<double>(args.rounds),
        static_cast<unsigned long long>(after.resubmits - before.resubmits),
        static_cast<unsigned long long>(after.fallbacks - before.fallbacks));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  std::string err;
  if (!ParseArgs(argc, argv, &args, &err)) {
    return Fail(err + "\nusage: quiver-bench-uring [--quick] [--dir DIR] [--rows N] "
                      "[--keys 8,64,256] [--rounds N] [--cache-mb 8]");
  }
  return Run(args);
}
