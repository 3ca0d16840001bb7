// quiverctl verify (operations.h): the online store against the offline store.
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ctl/args.h"
#include "ctl/backup_plan.h"
#include "ctl/operations.h"
#include "ctl/session.h"
#include "quiver/client/cluster_map.h"
#include "quiver/keys/entity_key.h"
#include "quiver/node/materializer.h"
#include "quiver/storage/offline_store.h"
#include "quiver/storage/row_store.h"

namespace quiver::ctl {
namespace {

namespace v1 = quiver::v1;
using Stub = Coordinator::Stub;

constexpr size_t kLookupBatch = 1000;
constexpr size_t kScanBatchRows = 4096;

// The offline store's latest row of one entity key: every row tied on
// (event, created), since the online store keeps one of them by its own
// byte order (storage/row_store.h).
struct Expected {
  std::vector<Value> join_key_values;
  int64_t event_ts_us = 0;
  int64_t created_ts_us = 0;
  std::vector<std::vector<Value>> tied_values;
};

struct Counts {
  uint64_t expected = 0, matched = 0, expired = 0, newer = 0;
  uint64_t missing = 0, stale = 0, differing = 0, online_only = 0;
  uint64_t mismatches() const { return missing + stale + differing; }
};

absl::Status ScanExpected(const client::RegistryIndex& registry, const std::string& view,
                          const v1::ViewIntervals& intervals, storage::OfflineStore& offline,
                          std::map<std::string, Expected>* out) {
  const client::ViewInfo* info = registry.FindView(view);
  std::string path;
  for (const auto& s : registry.registry().sources()) {
    if (s.name() == info->view->source()) path = s.path();
  }
  auto files = offline.ExpandPath(path);
  if (!files.ok()) return files.status();
  for (const std::string& file : *files) {
    for (const auto& interval : intervals.intervals()) {
      v1::MaterializationTask task;
      task.set_view(view);
      task.set_file(file);
      task.set_row_begin(0);
      task.set_row_end(UINT64_MAX);
      task.set_start_us(interval.start_us());
      task.set_end_us(interval.end_us());
      auto query = node::BuildLatestQuery(registry, task);
      if (!query.ok()) return query.status();
      auto transform = node::OnDemandTransform(registry, view);
      if (!transform.ok()) return transform.status();
      absl::Status s = offline.ScanLatest(
          *query, kScanBatchRows, [&](std::vector<storage::OfflineRow>& rows) -> absl::Status {
            for (storage::OfflineRow& row : rows) {
              if (*transform) row.values = (*transform)(row.values);
              std::vector<KeyPart> parts;
              for (size_t i = 0; i < query->join_keys.size(); ++i) {
                parts.push_back({query->join_keys[i].name, row.join_key_values[i]});
              }
              auto key = EncodeEntityKey(std::move(parts));
              if (!key.ok()) return key.status();
              auto [it, fresh] = out->try_emplace(*key);
              Expected& e = it->second;
              const auto have = std::make_pair(e.event_ts_us, e.created_ts_us);
              const auto next = std::make_pair(row.event_ts_us, row.created_ts_us);
              if (fresh || next > have) {
                e.join_key_values = std::move(row.join_key_values);
                e.event_ts_us = row.event_ts_us;
                e.created_ts_us = row.created_ts_us;
                e.tied_values.assign(1, std::move(row.values));
              } else if (next == have) {
                e.tied_values.push_back(std::move(row.values));
              }
            }
            return absl::OkStatus();
          });
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

bool SameValues(const std::vector<client::FeatureValue>& got, const std::vector<Value>& want) {
  if (got.size() != want.size()) return false;
  for (size_t j = 0; j < got.size(); ++j) {
    if (want[j].is_null()) {
      if (got[j].status != client::FeatureStatus::kNullValue && !got[j].value.is_null()) return false;
    } else if (got[j].status != client::FeatureStatus::kPresent || !(got[j].value == want[j])) {
      return false;
    }
  }
  return true;
}

void Classify(const Expected& e, const std::vector<client::FeatureValue>& got, int64_t ttl_us,
              int64_t now_us, Counts* c) {
  bool served = false, outside = false;
  int64_t ev = 0;
  for (const auto& f : got) {
    if (f.status == client::FeatureStatus::kPresent ||
        f.status == client::FeatureStatus::kNullValue) {
      served = true;
      ev = f.event_ts_us;
    } else if (f.status == client::FeatureStatus::kOutsideMaxAge) {
      outside = true;
      ev = f.event_ts_us;
    }
  }
  const bool expired = ttl_us > 0 && e.event_ts_us + ttl_us < now_us;
  if (served && ev > e.event_ts_us) {
    ++c->newer;  // a newer row pushed after the materialization
  } else if (expired) {
    // Feast's TTL: a row older than the TTL is never served.
    if (served) {
      ++c->differing;
    } else {
      ++c->expired;
    }
  } else if (!served && !outside) {
    ++c->missing;
  } else if (ev < e.event_ts_us || !served) {
    ++c->stale;
  } else {
    bool any = false;
    for (const auto& want : e.tied_values) any = any || SameValues(got, want);
    if (any) {
      ++c->matched;
    } else {
      ++c->differing;
    }
  }
}

// Online entity keys the offline window does not hold: every partition
// scanned on its first UP replica.
absl::StatusOr<uint64_t> CountOnlineOnly(const client::ClusterMapView& map, const std::string& view,
                                         const std::map<std::string, Expected>& expected) {
  std::map<uint32_t, std::vector<uint32_t>> by_node;
  for (uint32_t p = 0; p < map.num_partitions(); ++p) {
    auto replicas = map.ReplicasOf(p);
    if (replicas.empty()) {
      return absl::UnavailableError(absl::StrCat("partition ", p, " has no UP replica"));
    }
    by_node[replicas[0]].push_back(p);
  }
  uint64_t count = 0;
  for (const auto& [id, partitions] : by_node) {
    auto stub = NodeStub(map.AddressOf(id));
    for (auto [begin, end] : PartitionRanges(partitions)) {
      auto s = ForEachStoredRow(*stub, absl::StrCat("node ", id, " (", map.AddressOf(id), ")"), view,
                                begin, end, map.epoch(), [&](const v1::StoredRow& row) {
                                  const std::string ek(storage::RowStore::EntityKeyOfRowKey(row.key()));
                                  if (!expected.count(ek)) ++count;
                                });
      if (!s.ok()) return s;
    }
  }
  return count;
}

}  // namespace

absl::Status RunVerify(const CommandLine& cl, std::FILE* out, std::FILE* err) {
  auto client = ConnectClient(cl);
  if (!client.ok()) return client.status();
  auto registry = (*client)->registry();
  auto map = (*client)->cluster_map();
  Coordinator coord(cl);
  v1::GetIntervalsResponse intervals;
  if (auto s = coord.Call("GetIntervals", &Stub::GetIntervals, v1::GetIntervalsRequest(),
                          &intervals);
      !s.ok()) {
    return s;
  }
  std::vector<std::string> views;
  if (auto it = cl.flags.find("views"); it != cl.flags.end()) {
    auto list = ParseNameList("views", it->second);
    if (!list.ok()) return list.status();
    for (const auto& v : *list) {
      if (registry->FindView(v) == nullptr) {
        return absl::NotFoundError(absl::StrCat("unknown feature view '", v, "'"));
      }
    }
    views = *list;
  } else {
    for (const auto& v : registry->registry().feature_views()) {
      if (v.online()) views.push_back(v.name());
    }
  }
  auto offline = storage::OfflineStore::Open();
  if (!offline.ok()) return offline.status();
  const int64_t now_us = absl::ToUnixMicros(absl::Now());
  uint64_t total_mismatches = 0;
  size_t verified = 0;
  for (const std::string& view : views) {
    const v1::ViewIntervals* vi = nullptr;
    for (const auto& i : intervals.views()) {
      if (i.view() == view) vi = &i;
    }
    if (vi == nullptr || vi->intervals_size() == 0) {
      Print(err, absl::StrCat("view ", view, ": never materialized, skipped\n"));
      continue;
    }
    std::map<std::string, Expected> expected;
    if (auto s = ScanExpected(*registry, view, *vi, **offline, &expected); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("view ", view, ": offline store: ", s.message()));
    }
    const client::ViewInfo* info = registry->FindView(view);
    const int64_t ttl_us = info->view->ttl_seconds() * 1'000'000;
    Counts c;
    c.expected = expected.size();
    std::vector<const Expected*> batch;
    client::OnlineRequest req;
    req.features = {view};
    req.deadline = std::chrono::milliseconds(cl.deadline_ms);
    auto flush = [&]() -> absl::Status {
      if (batch.empty()) return absl::OkStatus();
      auto resp = (*client)->GetOnlineFeatures(req);
      if (!resp.ok()) return resp.status();
      for (size_t r = 0; r < batch.size(); ++r) Classify(*batch[r], resp->rows[r], ttl_us, now_us, &c);
      batch.clear();
      req.entity_rows.clear();
      return absl::OkStatus();
    };
    for (const auto& [key, e] : expected) {
      std::map<std::string, Value> row;
      for (size_t i = 0; i < info->join_keys.size(); ++i) {
        row[info->join_keys[i].join_key] = e.join_key_values[i];
      }
      req.entity_rows.push_back(std::move(row));
      batch.push_back(&e);
      if (batch.size() >= kLookupBatch) {
        if (auto s = flush(); !s.ok()) return s;
      }
    }
    if (auto s = flush(); !s.ok()) return s;
    auto online_only = CountOnlineOnly(*map, view, expected);
    if (!online_only.ok()) return online_only.status();
    c.online_only = *online_only;
    Print(out, absl::StrCat("view=", view, " expected=", c.expected, " matched=", c.matched,
                            " expired=", c.expired, " newer=", c.newer, " missing=", c.missing,
                            " stale=", c.stale, " differing=", c.differing,
                            " online_only=", c.online_only, " mismatches=", c.mismatches(), "\n"));
    total_mismatches += c.mismatches();
    ++verified;
  }
  Print(out, absl::StrCat("verify: ", verified, " views, ", total_mismatches, " mismatches\n"));
  if (total_mismatches > 0) {
    return absl::DataLossError(absl::StrCat(total_mismatches,
                                            " online rows differ from the offline store"));
  }
  return absl::OkStatus();
}

}  // namespace quiver::ctl
