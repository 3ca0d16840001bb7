// The lookup path of ClientImpl: resolve, key, route, fan out, fail over.
#include <algorithm>
#include <span>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "client_impl.h"
#include "quiver/client/convert.h"
#include "quiver/client/packed_rows.h"
#include "quiver/keys/entity_key.h"
#include "lean_fanout.h"
#include "rpc_fanout.h"
#include "spdlog/spdlog.h"

namespace quiver::client::internal {
namespace {

// Keys per Get call; a node refuses more than 10,000 per request.
constexpr size_t kMaxKeysPerCall = 5000;
// How long a hedge may wait for a new lean connection (loopback or LAN
// connects take well under 1 ms; a dropped SYN is retried only after 1 s).
constexpr auto kHedgeConnect = std::chrono::milliseconds(20);

// The features one request reads from one view.
struct ViewPlan {
  const ViewInfo* info = nullptr;
  std::string name;
  std::vector<const ResolvedFeature*> features;  // in the request's order
  bool all_features = false;  // every feature of the view in schema order: sent as "all"
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
  // A replica refused the item because the map routing it is older than a
  // move's flip (ABORTED). No patient round then: waiting for a replica of an
  // outdated map (e.g. a dead source) could spend the whole deadline, while
  // a fresh map (GetOnlineFeatures refreshes on a stale refusal) names the
  // owner at once.
  bool stale = false;
  bool done = false;
};

size_t Untried(const Item& item) {
  size_t n = 0;
  for (size_t i = 0; i < item.replicas.size() && i < 64; ++i) n += ((item.tried >> i) & 1) == 0;
  return n;
}

// A refusal every replica would repeat: a bad request, or the caller's
// token or permissions (the replicas share the registry's permissions).
bool IsFinal(grpc::StatusCode code) {
  return code == grpc::StatusCode::INVALID_ARGUMENT || code == grpc::StatusCode::UNAUTHENTICATED ||
         code == grpc::StatusCode::PERMISSION_DENIED;
}

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
      return absl::InternalError(absl::StrCat("feature ", plan.name, ":", plan.features[j]->feature, ": ",
                                              v.status().message()));
    }
    FeatureValue& cell = (*out)[plan.columns[j]];
    cell.status = v->is_null() ? FeatureStatus::kNullValue : FeatureStatus::kPresent;
    cell.value = *std::move(v);
    cell.event_ts_us = r.event_ts_us();
  }
  return absl::OkStatus();
}

// Same as FillRow, from the packed encoding (the node copied stored cells).
absl::Status FillPackedRow(const ViewPlan& plan, PackedRowReader& reader,
                           std::vector<FeatureValue>* out) {
  auto row = reader.NextRow();
  if (!row.ok()) return absl::InternalError(row.status().message());
  if (row->status != PackedStatus::kPresent) {
    const FeatureStatus status = row->status == PackedStatus::kNotFound
                                     ? FeatureStatus::kNotFound
                                     : FeatureStatus::kOutsideMaxAge;
    for (size_t j = 0; j < plan.columns.size(); ++j) {
      (*out)[plan.columns[j]] = FeatureValue{Value::Null(plan.types[j]), status, row->event_ts_us};
    }
    return absl::OkStatus();
  }
  for (size_t j = 0; j < plan.columns.size(); ++j) {
    auto v = reader.NextCell(plan.types[j]);
    if (!v.ok()) {
      return absl::InternalError(absl::StrCat("feature ", plan.name, ":", plan.features[j]->feature, ": ",
                                              v.status().message()));
    }
    FeatureValue& cell = (*out)[plan.columns[j]];
    cell.status = v->is_null() ? FeatureStatus::kNullValue : FeatureStatus::kPresent;
    cell.value = *std::move(v);
    cell.event_ts_us = row->event_ts_us;
  }
  return absl::OkStatus();
}

// What a ReadCall needs from the client.
struct ReadHooks {
  std::function<std::shared_ptr<quiver::v1::NodeService::Stub>(const std::string&)> stub_for;
  std::function<void(uint32_t node)> on_failure;
  std::function<void(uint64_t epoch)> on_epoch;
  // A call to `node` answered in `latency` (feeds the hedging delay).
  std::function<void(uint32_t node, Clock::duration latency)> on_latency;
  // How long to wait for `node` before hedging (Clock::duration::max(): never).
  std::function<Clock::duration(uint32_t node)> hedge_after;
  // Spends one hedge from the budget; false when it is exhausted.
  std::function<bool()> take_hedge;
  // A call to `node` overran its hedge delay (the node is marked slow).
  std::function<void(uint32_t node)> on_slow;
  // A node refused rows as routed by a stale map (ABORTED: it does not own
  // their partition any more).
  std::function<void()> on_stale;
};

// The lookup of one request: owns the items and the in-flight calls. `Fanout`
// is the transport: LeanFanout (lean lookup protocol) or RpcFanout (gRPC).
template <typename Fanout>
class ReadCall {
 public:
  static constexpr bool kLean = std::is_same_v<Fanout, LeanFanout>;

  template <typename... FanoutArgs>
  ReadCall(const ClusterMapView& map, std::vector<ViewPlan> plans,
           std::vector<Item> items, OnlineResponse* response, std::vector<uint32_t> suspects,
           std::vector<uint32_t> slow, Clock::time_point deadline, std::chrono::milliseconds min_attempt,
           FanoutArgs&&... fanout_args)
      : map_(map),
        plans_(std::move(plans)),
        items_(std::move(items)),
        response_(response),
        suspects_(std::move(suspects)),
        slow_(std::move(slow)),
        deadline_(deadline),
        min_attempt_(min_attempt),
        fanout_(std::forward<FanoutArgs>(fanout_args)...) {}

  // Sends every item, fails over and hedges until each item is answered or
  // failed, or the deadline passes.
  absl::Status Run(const ReadHooks& hooks);

 private:
  // The next replica of `item` to try: untried, in preference order, healthy
  // before slow (the one that overran longest ago first) before suspect
  // (failing). Returns -1 when every replica was tried.
  int PickReplica(const Item& item) const {
    constexpr size_t kSuspect = 1 << 20;
    int best = -1;
    size_t best_rank = SIZE_MAX;
    for (size_t i = 0; i < item.replicas.size() && i < 64; ++i) {
      if ((item.tried >> i) & 1) continue;
      const uint32_t node = item.replicas[i];
      if (map_.AddressOf(node).empty()) continue;
      size_t rank = 0;
      if (std::find(suspects_.begin(), suspects_.end(), node) != suspects_.end()) {
        rank = kSuspect;
      } else if (auto it = std::find(slow_.begin(), slow_.end(), node); it != slow_.end()) {
        rank = 1 + static_cast<size_t>(it - slow_.begin());
      }
      if (rank == 0) return static_cast<int>(i);
      if (rank < best_rank) best = static_cast<int>(i), best_rank = rank;
    }
    return best;
  }

  // Sends `item_ids` to their next replica. `hedge`: the items are still in
  // flight elsewhere, so one without an untried replica is left alone.
  void Dispatch(const std::vector<uint32_t>& item_ids, const ReadHooks& hooks, bool hedge);

  absl::Status Apply(const typename Fanout::Call& call);

  void Done(uint32_t item_id) {
    if (items_[item_id].done) return;
    items_[item_id].done = true;
    --remaining_;
  }
  void Fail(uint32_t item_id) {
    if (items_[item_id].done) return;
    Done(item_id);
    failed_rows_.push_back(items_[item_id].row);
  }
  std::vector<uint32_t> Pending(const std::vector<uint32_t>& ids) const {
    std::vector<uint32_t> out;
    for (uint32_t id : ids) {
      if (!items_[id].done) out.push_back(id);
    }
    return out;
  }

  // A call in flight, and when to hedge it.
  struct Flight {
    typename Fanout::Call* call;
    Clock::time_point start;
    Clock::time_point hedge_at;  // max: never
  };

  const ClusterMapView& map_;
  std::vector<ViewPlan> plans_;
  std::vector<Item> items_;
  OnlineResponse* response_;
  std::vector<uint32_t> suspects_;
  std::vector<uint32_t> slow_;
  Clock::time_point deadline_;
  std::chrono::milliseconds min_attempt_;
  Fanout fanout_;
  std::vector<Flight> flights_;
  size_t remaining_ = 0;  // items neither answered nor failed
  std::vector<uint16_t> inflight_;  // per item: calls carrying it now
  std::vector<FeatureValue> scratch_;  // rows of items answered twice (hedges)
  std::vector<uint32_t> failed_rows_;
  std::string last_error_;
  absl::Status final_error_;
};

template <typename Fanout>
void ReadCall<Fanout>::Dispatch(const std::vector<uint32_t>& item_ids, const ReadHooks& hooks,
                                bool hedge) {
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
    if (pick < 0 && hedge) continue;
    // A hedge is an optimization: never to a node known to be failing (its
    // connect may block this thread while the first call's answer waits).
    if (hedge && std::find(suspects_.begin(), suspects_.end(), item.replicas[pick]) != suspects_.end()) {
      continue;
    }
    if (pick < 0 && !item.patient && !item.stale && Clock::now() < deadline_) {
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
    typename Fanout::Call* call = fanout_.NewCall(node, attempt_deadline);
    if constexpr (!kLean) call->ctx.set_wait_for_ready(group.patient);
    quiver::v1::GetRequest req;
    req.set_epoch(map_.epoch());
    req.set_packed(true);
    for (size_t v = 0; v < per_view.size(); ++v) {
      if (per_view[v].empty()) continue;
      auto* lookup = req.add_lookups();
      lookup->set_view(plans_[v].name);
      if (!plans_[v].all_features) {
        for (const ResolvedFeature* f : plans_[v].features) lookup->add_features(f->feature);
      }
      for (uint32_t id : per_view[v]) {
        lookup->add_entity_keys(items_[id].key);
        call->items.push_back(id);
        ++inflight_[id];
      }
      call->lookup_views.push_back(static_cast<uint32_t>(v));
      call->lookup_sizes.push_back(static_cast<uint32_t>(per_view[v].size()));
    }
    // Patient attempts and hedges are not hedged again.
    const Clock::duration wait = group.patient || hedge ? Clock::duration::max() : hooks.hedge_after(node);
    const Clock::time_point hedge_at =
        wait >= attempt_deadline - now ? Clock::time_point::max() : now + wait;
    flights_.push_back(Flight{call, now, hedge_at});
    if constexpr (kLean) {
      // Connecting blocks this thread; a hedge's connect gets kHedgeConnect
      // (a peer that drops SYNs, e.g. one cut off by a partition, would
      // otherwise hold it past the deadline while the first call's answer
      // waits unread).
      fanout_.Start(call, map_.LookupAddressOf(node), req, group.patient,
                    hedge ? now + kHedgeConnect : Clock::time_point::max());
    } else {
      auto stub = hooks.stub_for(map_.AddressOf(node));
      fanout_.Start(call, [&](grpc::ClientContext* ctx, grpc::CompletionQueue* cq) {
        return stub->PrepareAsyncGet(ctx, req, cq);
      });
    }
  }
}

template <typename Fanout>
absl::Status ReadCall<Fanout>::Apply(const typename Fanout::Call& call) {
  const auto& resp = call.response;
  if (static_cast<size_t>(resp.results_size()) != call.lookup_sizes.size()) {
    return absl::InternalError(absl::StrCat("node answered ", resp.results_size(),
                                            " view results for ", call.lookup_sizes.size(),
                                            " lookups"));
  }
  size_t next = 0;
  for (size_t l = 0; l < call.lookup_sizes.size(); ++l) {
    const auto& result = resp.results(static_cast<int>(l));
    const ViewPlan& plan = plans_[call.lookup_views[l]];
    if (result.rows_size() == 0 && !result.packed_rows().empty()) {
      PackedRowReader reader(result.packed_rows());
      for (uint32_t r = 0; r < call.lookup_sizes[l]; ++r) {
        const Item& item = items_[call.items[next++]];
        // An item a hedge already answered keeps that answer.
        auto* row = item.done ? &scratch_ : &response_->rows[item.row];
        if (absl::Status s = FillPackedRow(plan, reader, row); !s.ok()) {
          return s;
        }
      }
      if (!reader.done()) return absl::InternalError("node answered more packed rows than keys");
      continue;
    }
    // A node that does not know `packed` answers with messages.
    if (static_cast<size_t>(result.rows_size()) != call.lookup_sizes[l]) {
      return absl::InternalError(absl::StrCat("node answered ", result.rows_size(), " rows for ",
                                              call.lookup_sizes[l], " keys"));
    }
    for (int r = 0; r < result.rows_size(); ++r) {
      const Item& item = items_[call.items[next++]];
      auto* row = item.done ? &scratch_ : &response_->rows[item.row];
      if (absl::Status s = FillRow(plan, result.rows(r), row); !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

template <typename Fanout>
absl::Status ReadCall<Fanout>::Run(const ReadHooks& hooks) {
  scratch_ = response_->rows.empty() ? std::vector<FeatureValue>() : response_->rows.front();
  std::vector<uint32_t> all(items_.size());
  for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
  remaining_ = items_.size();
  inflight_.assign(items_.size(), 0);
  Dispatch(all, hooks, /*hedge=*/false);
  bool timed_out = false;
  while (fanout_.outstanding() > 0 && remaining_ > 0) {
    Clock::time_point wake = deadline_;
    for (const Flight& f : flights_) {
      if (!f.call->done) wake = std::min(wake, f.hedge_at);
    }
    typename Fanout::Call* call = fanout_.Next(wake);
    if (call != nullptr) {
      for (uint32_t id : call->items) --inflight_[id];
    }
    if (call == nullptr && Clock::now() < deadline_) {
      // Hedge the calls running past their replica's recent p95 (Dean and
      // Barroso, "The Tail at Scale", 2013), within the client's budget.
      const auto now = Clock::now();
      for (size_t i = 0; i < flights_.size(); ++i) {
        Flight& f = flights_[i];
        if (f.call->done || f.hedge_at > now) continue;
        f.hedge_at = Clock::time_point::max();
        // Slow now, budget or not: later lookups go to its peers first.
        hooks.on_slow(f.call->node);
        std::vector<uint32_t> pending = Pending(f.call->items);
        if (!pending.empty() && hooks.take_hedge()) Dispatch(pending, hooks, /*hedge=*/true);
      }
      continue;
    }
    if (call == nullptr) {
      timed_out = true;
      for (typename Fanout::Call* c : fanout_.CancelAndDrain()) {
        for (uint32_t id : c->items) Fail(id);
      }
      last_error_ = "deadline exceeded";
      break;
    }
    if (call->status.ok()) {
      for (const Flight& f : flights_) {
        if (f.call == call) hooks.on_latency(call->node, Clock::now() - f.start);
      }
      hooks.on_epoch(call->response.epoch());
      absl::Status applied = Apply(*call);
      if (applied.ok()) {
        for (uint32_t id : call->items) Done(id);
        continue;
      }
      last_error_ = absl::StrCat("node ", call->node, ": ", applied.message());
    } else {
      last_error_ = absl::StrCat("node ", call->node, ": ", call->status.error_message(),
                                 " (grpc code ", static_cast<int>(call->status.error_code()), ")");
      if (call->status.error_code() == grpc::StatusCode::ABORTED) {
        hooks.on_stale();
        for (uint32_t id : call->items) items_[id].stale = true;
      }
      if (IsFinal(call->status.error_code())) {
        final_error_ = absl::Status(static_cast<absl::StatusCode>(call->status.error_code()), last_error_);
        for (uint32_t id : call->items) Fail(id);
        continue;
      }
    }
    spdlog::debug("client: get failed on {}, failing over", last_error_);
    hooks.on_failure(call->node);
    std::vector<uint32_t> pending = Pending(call->items);
    if (Clock::now() >= deadline_) {
      timed_out = true;
      for (uint32_t id : pending) Fail(id);
      continue;
    }
    // Items with a hedge still in flight wait for it; the others fail over.
    std::vector<uint32_t> orphans;
    for (uint32_t id : pending) {
      if (inflight_[id] == 0) orphans.push_back(id);
    }
    if (!orphans.empty()) Dispatch(orphans, hooks, /*hedge=*/false);
  }
  // Every item is answered: drop the losing hedges.
  if (fanout_.outstanding() > 0) (void)fanout_.CancelAndDrain();
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
  bool stale = false;
  absl::StatusOr<OnlineResponse> response = Lookup(request, Take(), deadline, &stale);
  // A node refused rows because this client's map is older than a move's
  // flip: fetch the map and look up again with what is left of the deadline
  // (docs/architecture.md, "Rebalancing and epoch fencing").
  for (int retry = 0; retry < 2 && !response.ok() && stale && Clock::now() < deadline; ++retry) {
    if (!AwaitFetch(deadline).ok()) break;
    stale = false;
    response = Lookup(request, Take(), deadline, &stale);
  }
  return response;
}

absl::StatusOr<OnlineResponse> ClientImpl::Lookup(const OnlineRequest& request,
                                                  const Snapshot& snap,
                                                  Clock::time_point deadline, bool* stale) {
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
  // A service is resolved once per registry (FindService); references per call.
  absl::StatusOr<std::vector<ResolvedFeature>> by_refs;
  const absl::StatusOr<std::vector<ResolvedFeature>>* found = nullptr;
  if (request.features.empty()) {
    found = snap.registry->FindService(request.feature_service);
    if (found == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("unknown feature service '", request.feature_service, "'"));
    }
  } else {
    by_refs = snap.registry->Resolve(request.features);
    found = &by_refs;
  }
  const absl::StatusOr<std::vector<ResolvedFeature>>& resolved = *found;
  if (!resolved.ok()) return resolved.status();
  for (const ResolvedFeature& f : *resolved) {
    if (f.on_demand != nullptr) return LookupOnDemand(request, *resolved, snap, deadline, stale);
  }
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
    if (fresh) plans.push_back(ViewPlan{snap.registry->FindView(f.view), f.view, {}, false, {}, {}});
    ViewPlan& plan = plans[it->second];
    plan.features.push_back(&f);
    plan.columns.push_back(static_cast<int>(c));
    plan.types.push_back(f.type);
  }
  for (ViewPlan& plan : plans) {
    bool all = plan.features.size() == plan.info->feature_types.size();
    for (size_t j = 0; all && j < plan.features.size(); ++j) {
      all = plan.features[j]->index == static_cast<int>(j);
    }
    plan.all_features = all;
  }
  response.rows.assign(request.entity_rows.size(), empty_row);
  if (request.entity_rows.empty() || plans.empty()) return response;

  // Views keyed by the same join keys share one entity key per row: encode
  // and hash it once (a service over many views of one entity is the common
  // case).
  std::vector<size_t> key_source(plans.size());
  for (size_t v = 0; v < plans.size(); ++v) {
    key_source[v] = v;
    for (size_t u = 0; u < v; ++u) {
      const auto& a = plans[u].info->join_keys;
      const auto& b = plans[v].info->join_keys;
      const bool same = a.size() == b.size() &&
                        std::equal(a.begin(), a.end(), b.begin(), [](const auto& x, const auto& y) {
                          return x.join_key == y.join_key && x.type == y.type;
                        });
      if (same) {
        key_source[v] = u;
        break;
      }
    }
  }
  std::vector<Item> items;
  items.reserve(request.entity_rows.size() * plans.size());
  for (size_t r = 0; r < request.entity_rows.size(); ++r) {
    const size_t first = items.size();
    for (size_t v = 0; v < plans.size(); ++v) {
      Item item;
      item.row = static_cast<uint32_t>(r);
      item.view = static_cast<uint32_t>(v);
      if (key_source[v] != v) {
        const Item& same = items[first + key_source[v]];
        item.key = same.key;
        item.replicas = same.replicas;
      } else {
        auto key = snap.registry->EntityKeyFor(*plans[v].info, request.entity_rows[r]);
        if (!key.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("entity row ", r, ": ", key.status().message()));
        }
        item.replicas = snap.map->ReplicasOf(PartitionOf(*key, snap.map->num_partitions()));
        item.key = *std::move(key);
      }
      items.push_back(std::move(item));
    }
  }
  if (!snap.map->has_partitions()) {
    return absl::UnavailableError("cluster map has no partitions yet (no node joined)");
  }

  ReadHooks hooks;
  hooks.stub_for = [this](const std::string& address) { return StubFor(address); };
  hooks.on_failure = [this](uint32_t node) { breaker_.Failure(node, Clock::now()); };
  hooks.on_epoch = [this](uint64_t epoch) { NoteEpoch(epoch); };
  hooks.on_latency = [this](uint32_t node, Clock::duration d) {
    hedger_.Record(node, d);
    breaker_.Success(node);
  };
  hooks.hedge_after = [this](uint32_t node) {
    return options_.hedged_reads ? hedger_.HedgeAfter(node) : Clock::duration::max();
  };
  hooks.take_hedge = [this] { return hedger_.TakeHedge(); };
  hooks.on_slow = [this](uint32_t node) { hedger_.NoteSlow(node, Clock::now()); };
  hooks.on_stale = [stale] { *stale = true; };
  hedger_.NoteCall();
  auto run = [&](auto& call) { return call.Run(hooks); };
  absl::Status s;
  if (options_.lean_lookups && snap.map->AllServeLean()) {
    ReadCall<LeanFanout> call(*snap.map, std::move(plans), std::move(items), &response,
                              SuspectNodes(), hedger_.Slow(Clock::now()), deadline,
                              options_.min_attempt_timeout, &lean_pool_);
    s = run(call);
  } else {
    ReadCall<RpcFanout<quiver::v1::GetResponse>> call(*snap.map, std::move(plans),
                                                      std::move(items), &response, SuspectNodes(),
                                                      hedger_.Slow(Clock::now()), deadline,
                                                      options_.min_attempt_timeout);
    s = run(call);
  }
  if (!s.ok()) return s;
  return response;
}

}  // namespace quiver::client::internal
