// The lookup path of ClientImpl: resolve, key, route, fan out, fail over.
#include <algorithm>
#include <span>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "client_impl.h"
#include "quiver/client/convert.h"
#include "quiver/keys/entity_key.h"
#include "rpc_fanout.h"
#include "spdlog/spdlog.h"

namespace quiver::client::internal {
namespace {

// Keys per Get call; a node refuses more than 10,000 per request.
constexpr size_t kMaxKeysPerCall = 5000;

// The features one request reads from one view.
struct ViewPlan {
  const ViewInfo* info = nullptr;
  std::string name;
  std::vector<std::string> features;  // names, as sent to the node
  std::vector<int> columns;           // response column of each feature
  std::vector<ValueType> types;
};

// One (entity row, view) lookup: the unit that is routed and retried.
struct Item {
  uint32_t row = 0;
  uint32_t view = 0;
  std::string key;
  std::span<const uint32_t> replicas;  // preference order
  uint64_t tried = 0;                  // bit i: replicas[i] was tried
  // Second round: every replica failed fast (refused, or its channel was in
  // reconnect backoff) while time is left, so each is tried again waiting for
  // its connection (wait_for_ready) up to the attempt deadline.
  bool patient = false;
  bool done = false;
};

size_t Untried(const Item& item) {
  size_t n = 0;
  for (size_t i = 0; i < item.replicas.size() && i < 64; ++i) n += ((item.tried >> i) & 1) == 0;
  return n;
}

bool IsFinal(grpc::StatusCode code) { return code == grpc::StatusCode::INVALID_ARGUMENT; }

// Fills the response cells of `item` from one node's row result.
// Errors: kInternal for a row that does not match what was asked.
absl::Status FillRow(const ViewPlan& plan, const quiver::v1::RowResult& r,
                     std::vector<FeatureValue>* out) {
  switch (r.status()) {
    case quiver::v1::NOT_FOUND:
      for (size_t j = 0; j < plan.columns.size(); ++j) {
        (*out)[plan.columns[j]] = FeatureValue{Value::Null(plan.types[j]), FeatureStatus::kNotFound, 0};
      }
      return absl::OkStatus();
    case quiver::v1::OUTSIDE_MAX_AGE:
      for (size_t j = 0; j < plan.columns.size(); ++j) {
        (*out)[plan.columns[j]] = FeatureValue{Value::Null(plan.types[j]),
                                               FeatureStatus::kOutsideMaxAge, r.event_ts_us()};
      }
      return absl::OkStatus();
    case quiver::v1::PRESENT:
      break;
    default:
      return absl::InternalError(absl::StrCat("row status ", static_cast<int>(r.status())));
  }
  if (static_cast<size_t>(r.values_size()) != plan.features.size()) {
    return absl::InternalError(absl::StrCat("row has ", r.values_size(), " values, asked ",
                                            plan.features.size()));
  }
  for (size_t j = 0; j < plan.columns.size(); ++j) {
    auto v = FromProto(r.values(static_cast<int>(j)), plan.types[j]);
    if (!v.ok()) {
      return absl::InternalError(absl::StrCat("feature ", plan.name, ":", plan.features[j], ": ",
                                              v.status().message()));
    }
    FeatureValue& cell = (*out)[plan.columns[j]];
    cell.status = v->is_null() ? FeatureStatus::kNullValue : FeatureStatus::kPresent;
    cell.value = *std::move(v);
    cell.event_ts_us = r.event_ts_us();
  }
  return absl::OkStatus();
}

// The lookup of one request: owns the items and the in-flight calls.
class ReadCall {
 public:
  using Fanout = RpcFanout<quiver::v1::GetResponse>;

  ReadCall(const ClusterMapView& map, std::vector<ViewPlan> plans,
           std::vector<Item> items, OnlineResponse* response, std::vector<uint32_t> suspects,
           Clock::time_point deadline, std::chrono::milliseconds min_attempt)
      : map_(map),
        plans_(std::move(plans)),
        items_(std::move(items)),
        response_(response),
        suspects_(std::move(suspects)),
        deadline_(deadline),
        min_attempt_(min_attempt) {}

  // `stub_for(address)` and `on_failure(node)`/`on_epoch(epoch)` reach the client.
  template <typename StubFor, typename OnFailure, typename OnEpoch>
  absl::Status Run(StubFor&& stub_for, OnFailure&& on_failure, OnEpoch&& on_epoch);

 private:
  // The next replica of `item` to try: untried, not suspect if possible.
  // Returns -1 when every replica was tried.
  int PickReplica(const Item& item) const {
    int fallback = -1;
    for (size_t i = 0; i < item.replicas.size() && i < 64; ++i) {
      if ((item.tried >> i) & 1) continue;
      if (map_.AddressOf(item.replicas[i]).empty()) continue;
      const bool suspect =
          std::find(suspects_.begin(), suspects_.end(), item.replicas[i]) != suspects_.end();
      if (!suspect) return static_cast<int>(i);
      if (fallback < 0) fallback = static_cast<int>(i);
    }
    return fallback;
  }

  template <typename StubFor>
  void Dispatch(const std::vector<uint32_t>& item_ids, StubFor& stub_for);

  absl::Status Apply(const Fanout::Call& call);

  void Fail(uint32_t item_id) {
    items_[item_id].done = true;
    failed_rows_.push_back(items_[item_id].row);
  }

  const ClusterMapView& map_;
  std::vector<ViewPlan> plans_;
  std::vector<Item> items_;
  OnlineResponse* response_;
  std::vector<uint32_t> suspects_;
  Clock::time_point deadline_;
  std::chrono::milliseconds min_attempt_;
  Fanout fanout_;
  std::vector<uint32_t> failed_rows_;
  std::string last_error_;
  absl::Status final_error_;
};

template <typename StubFor>
void ReadCall::Dispatch(const std::vector<uint32_t>& item_ids, StubFor& stub_for) {
  // (node, patient) -> view -> items, in first-seen order so requests are
  // deterministic.
  struct Group {
    uint32_t node;
    bool patient;
    std::vector<std::vector<uint32_t>> per_view;
    size_t untried_max = 0;
    size_t keys = 0;
  };
  std::vector<Group> groups;
  std::unordered_map<uint64_t, size_t> group_of;
  for (uint32_t id : item_ids) {
    Item& item = items_[id];
    int pick = PickReplica(item);
    if (pick < 0 && !item.patient && Clock::now() < deadline_) {
      item.patient = true;
      item.tried = 0;
      pick = PickReplica(item);
    }
    if (pick < 0) {
      Fail(id);
      continue;
    }
    const size_t left = Untried(item);
    item.tried |= uint64_t{1} << pick;
    const uint32_t node = item.replicas[pick];
    const uint64_t key = (uint64_t{node} << 1) | (item.patient ? 1 : 0);
    auto [it, fresh] = group_of.emplace(key, groups.size());
    // A node refuses more than 10,000 keys per request: full groups start a new call.
    if (fresh || groups[it->second].keys == kMaxKeysPerCall) {
      it->second = groups.size();
      groups.push_back(Group{node, item.patient, std::vector<std::vector<uint32_t>>(plans_.size())});
    }
    Group& group = groups[it->second];
    group.per_view[item.view].push_back(id);
    ++group.keys;
    group.untried_max = std::max(group.untried_max, left);
  }
  const auto now = Clock::now();
  for (const Group& group : groups) {
    const uint32_t node = group.node;
    const auto& per_view = group.per_view;
    // Leave time for the replicas still to try after this one.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - now);
    const auto attempt =
        std::max(min_attempt_, left / static_cast<int64_t>(std::max<size_t>(1, group.untried_max)));
    const auto attempt_deadline = std::min(deadline_, now + attempt);
    Fanout::Call* call = fanout_.NewCall(node, attempt_deadline);
    call->ctx.set_wait_for_ready(group.patient);
    quiver::v1::GetRequest req;
    req.set_epoch(map_.epoch());
    for (size_t v = 0; v < per_view.size(); ++v) {
      if (per_view[v].empty()) continue;
      auto* lookup = req.add_lookups();
      lookup->set_view(plans_[v].name);
      for (const auto& f : plans_[v].features) lookup->add_features(f);
      for (uint32_t id : per_view[v]) {
        lookup->add_entity_keys(items_[id].key);
        call->items.push_back(id);
      }
      call->lookup_views.push_back(static_cast<uint32_t>(v));
      call->lookup_sizes.push_back(static_cast<uint32_t>(per_view[v].size()));
    }
    auto stub = stub_for(map_.AddressOf(node));
    fanout_.Start(call, [&](grpc::ClientContext* ctx, grpc::CompletionQueue* cq) {
      return stub->PrepareAsyncGet(ctx, req, cq);
    });
  }
}

absl::Status ReadCall::Apply(const Fanout::Call& call) {
  const auto& resp = call.response;
  if (static_cast<size_t>(resp.results_size()) != call.lookup_sizes.size()) {
    return absl::InternalError(absl::StrCat("node answered ", resp.results_size(),
                                            " view results for ", call.lookup_sizes.size(),
                                            " lookups"));
  }
  size_t next = 0;
  for (size_t l = 0; l < call.lookup_sizes.size(); ++l) {
    const auto& result = resp.results(static_cast<int>(l));
    if (static_cast<size_t>(result.rows_size()) != call.lookup_sizes[l]) {
      return absl::InternalError(absl::StrCat("node answered ", result.rows_size(), " rows for ",
                                              call.lookup_sizes[l], " keys"));
    }
    const ViewPlan& plan = plans_[call.lookup_views[l]];
    for (int r = 0; r < result.rows_size(); ++r) {
      const Item& item = items_[call.items[next++]];
      if (absl::Status s = FillRow(plan, result.rows(r), &response_->rows[item.row]); !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

template <typename StubFor, typename OnFailure, typename OnEpoch>
absl::Status ReadCall::Run(StubFor&& stub_for, OnFailure&& on_failure, OnEpoch&& on_epoch) {
  std::vector<uint32_t> all(items_.size());
  for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
  Dispatch(all, stub_for);
  bool timed_out = false;
  while (fanout_.outstanding() > 0) {
    Fanout::Call* call = fanout_.Next(deadline_);
    if (call == nullptr) {
      timed_out = true;
      for (Fanout::Call* c : fanout_.CancelAndDrain()) {
        for (uint32_t id : c->items) Fail(id);
      }
      last_error_ = "deadline exceeded";
      break;
    }
    if (call->status.ok()) {
      on_epoch(call->response.epoch());
      absl::Status applied = Apply(*call);
      if (applied.ok()) {
        for (uint32_t id : call->items) items_[id].done = true;
        continue;
      }
      last_error_ = absl::StrCat("node ", call->node, ": ", applied.message());
    } else {
      last_error_ = absl::StrCat("node ", call->node, ": ", call->status.error_message(),
                                 " (grpc code ", static_cast<int>(call->status.error_code()), ")");
      if (IsFinal(call->status.error_code())) {
        final_error_ = absl::InvalidArgumentError(last_error_);
        for (uint32_t id : call->items) Fail(id);
        continue;
      }
    }
    spdlog::debug("client: get failed on {}, failing over", last_error_);
    on_failure(call->node);
    if (Clock::now() >= deadline_) {
      timed_out = true;
      for (uint32_t id : call->items) Fail(id);
      continue;
    }
    Dispatch(call->items, stub_for);
  }
  if (!final_error_.ok()) return final_error_;
  if (failed_rows_.empty()) return absl::OkStatus();
  std::sort(failed_rows_.begin(), failed_rows_.end());
  const size_t rows = std::unique(failed_rows_.begin(), failed_rows_.end()) - failed_rows_.begin();
  const std::string msg =
      absl::StrCat(rows, " of ", response_->rows.size(),
                   " entity rows could not be read from any replica (last error: ", last_error_, ")");
  return timed_out ? absl::DeadlineExceededError(msg) : absl::UnavailableError(msg);
}

}  // namespace

absl::StatusOr<OnlineResponse> ClientImpl::GetOnlineFeatures(const OnlineRequest& request) {
  const auto deadline =
      DeadlineAfter(request.deadline.count() > 0 ? request.deadline : options_.default_deadline);
  const Snapshot snap = Take();
  if (request.features.empty() == request.feature_service.empty()) {
    return absl::InvalidArgumentError("set exactly one of features and feature_service");
  }
  if (request.entity_rows.size() > options_.max_entity_rows) {
    return absl::InvalidArgumentError(absl::StrCat(request.entity_rows.size(),
                                                   " entity rows, at most ",
                                                   options_.max_entity_rows, " allowed"));
  }
  if (request.features.size() > options_.max_features) {
    return absl::InvalidArgumentError(absl::StrCat(request.features.size(),
                                                   " feature references, at most ",
                                                   options_.max_features, " allowed"));
  }
  auto resolved = request.features.empty() ? snap.registry->ResolveService(request.feature_service)
                                           : snap.registry->Resolve(request.features);
  if (!resolved.ok()) return resolved.status();
  if (resolved->size() > options_.max_features) {
    return absl::InvalidArgumentError(absl::StrCat(resolved->size(), " features, at most ",
                                                   options_.max_features, " allowed"));
  }

  OnlineResponse response;
  std::vector<ViewPlan> plans;
  std::unordered_map<std::string, size_t> plan_of;
  std::vector<FeatureValue> empty_row(resolved->size());
  for (size_t c = 0; c < resolved->size(); ++c) {
    const ResolvedFeature& f = (*resolved)[c];
    response.feature_refs.push_back(f.ref);
    empty_row[c].value = Value::Null(f.type);
    auto [it, fresh] = plan_of.emplace(f.view, plans.size());
    if (fresh) plans.push_back(ViewPlan{snap.registry->FindView(f.view), f.view, {}, {}, {}});
    ViewPlan& plan = plans[it->second];
    plan.features.push_back(f.feature);
    plan.columns.push_back(static_cast<int>(c));
    plan.types.push_back(f.type);
  }
  response.rows.assign(request.entity_rows.size(), empty_row);
  if (request.entity_rows.empty() || plans.empty()) return response;

  std::vector<Item> items;
  items.reserve(request.entity_rows.size() * plans.size());
  for (size_t r = 0; r < request.entity_rows.size(); ++r) {
    for (size_t v = 0; v < plans.size(); ++v) {
      auto key = snap.registry->EntityKeyFor(*plans[v].info, request.entity_rows[r]);
      if (!key.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("entity row ", r, ": ", key.status().message()));
      }
      Item item;
      item.row = static_cast<uint32_t>(r);
      item.view = static_cast<uint32_t>(v);
      item.replicas = snap.map->ReplicasOf(PartitionOf(*key, snap.map->num_partitions()));
      item.key = *std::move(key);
      items.push_back(std::move(item));
    }
  }
  if (!snap.map->has_partitions()) {
    return absl::UnavailableError("cluster map has no partitions yet (no node joined)");
  }

  ReadCall call(*snap.map, std::move(plans), std::move(items), &response, SuspectNodes(),
                deadline, options_.min_attempt_timeout);
  absl::Status s = call.Run([this](const std::string& address) { return StubFor(address); },
                            [this](uint32_t node) { MarkSuspect(node); },
                            [this](uint64_t epoch) { NoteEpoch(epoch); });
  if (!s.ok()) return s;
  return response;
}

}  // namespace quiver::client::internal
