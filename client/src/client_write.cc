// The write path of ClientImpl: every replica of each row's partition, one
// batched Write per node and batch in parallel, a quorum per row.
//
// Nodes the map marks DOWN are skipped (they count as a missing ack): waiting
// on them would only spend the deadline. Every other node takes writes:
// RECOVERING, JOINING and LEAVING ones too, and a partition's pending
// replicas (a move's target) get its rows as well. A
// replica that was DOWN comes back RECOVERING and copies what it missed from
// its peers before it serves reads again (node/include/quiver/node/repair.h).
// A replica that fails rows another replica took is reported to the
// coordinator, which marks it RECOVERING the same way.
#include <algorithm>
#include <tuple>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "client_impl.h"
#include "quiver/keys/entity_key.h"
#include "quiver/keys/packed_values.h"
#include "rpc_fanout.h"
#include "spdlog/spdlog.h"

namespace quiver::client::internal {
namespace {

// Errors: kInvalidArgument naming the row and feature.
absl::Status ValidateRow(const ViewInfo& view, size_t index, const EncodedRow& row) {
  if (row.entity_key.empty() || row.entity_key.size() > kMaxEntityKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("row ", index, ": entity key of ",
                                                   row.entity_key.size(), " bytes"));
  }
  if (!row.packed_values.empty()) {
    size_t bad = 0;
    absl::Status s = row.values.empty()
                         ? CheckPackedValues(row.packed_values, view.feature_types, &bad)
                         : absl::InvalidArgumentError("has both values and packed values");
    if (s.ok()) return s;
    const std::string feature =
        bad < view.feature_types.size()
            ? absl::StrCat(": feature '", view.view->features(static_cast<int>(bad)).name(), "'")
            : "";
    return absl::InvalidArgumentError(absl::StrCat("row ", index, feature, " ", s.message()));
  }
  if (row.values.size() != view.feature_types.size()) {
    return absl::InvalidArgumentError(absl::StrCat("row ", index, ": ", row.values.size(),
                                                   " values, view '", view.view->name(),
                                                   "' has ", view.feature_types.size(),
                                                   " features"));
  }
  for (size_t i = 0; i < row.values.size(); ++i) {
    const Value& v = row.values[i];
    const ValueType declared = view.feature_types[i];
    // A default-constructed Value (no type, no data) is accepted as a null.
    const bool untyped_null = v.is_null() && v.type == ValueType::kInvalid;
    absl::Status s = absl::OkStatus();
    if (!untyped_null && v.type != declared) {
      s = absl::InvalidArgumentError(absl::StrCat("is ", TypeName(v.type), ", declared ",
                                                  TypeName(declared)));
    } else if (!untyped_null) {
      s = CheckValue(v);
    }
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("row ", index, ": feature '",
                                                     view.view->features(static_cast<int>(i)).name(),
                                                     "' ", s.message()));
    }
  }
  return absl::OkStatus();
}

// Appends `row` to WriteRequest.packed_rows; `scratch` packs rows that came
// as Values.
void AppendWire(const EncodedRow& row, std::string* scratch, std::string* out) {
  std::string_view packed = row.packed_values;
  if (packed.empty()) {
    scratch->clear();
    AppendPackedValues(row.values, scratch);
    packed = *scratch;
  }
  AppendWriteRow(row.entity_key, row.event_ts_us, row.created_ts_us, packed, out);
}

}  // namespace

absl::Status ClientImpl::Push(const std::string& view, const std::vector<WriteRowInput>& rows,
                              const WriteOptions& options) {
  const Snapshot snap = Take();
  const ViewInfo* info = snap.registry->FindView(view);
  if (info == nullptr) return absl::NotFoundError(absl::StrCat("unknown feature view '", view, "'"));
  std::vector<EncodedRow> encoded;
  encoded.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    auto key = snap.registry->EntityKeyFor(*info, rows[i].entity);
    if (!key.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("row ", i, ": ", key.status().message()));
    }
    encoded.push_back(
        EncodedRow{*std::move(key), rows[i].event_ts_us, rows[i].created_ts_us, rows[i].values, {}});
  }
  return WriteRows(snap, view, info->view->schema_version(), encoded, options);
}

absl::Status ClientImpl::WriteEncoded(const std::string& view, uint32_t schema_version,
                                      const std::vector<EncodedRow>& rows,
                                      const WriteOptions& options) {
  return WriteRows(Take(), view, schema_version, rows, options);
}

absl::Status ClientImpl::WriteRows(const Snapshot& first, const std::string& view,
                                   uint32_t schema_version, const std::vector<EncodedRow>& rows,
                                   const WriteOptions& options) {
  const ViewInfo* info = first.registry->FindView(view);
  if (info == nullptr) return absl::NotFoundError(absl::StrCat("unknown feature view '", view, "'"));
  for (size_t i = 0; i < rows.size(); ++i) {
    if (absl::Status s = ValidateRow(*info, i, rows[i]); !s.ok()) return s;
  }
  if (rows.empty()) return absl::OkStatus();
  if (!first.map->has_partitions()) {
    return absl::UnavailableError("cluster map has no partitions yet (no node joined)");
  }
  const auto deadline =
      DeadlineAfter(options.deadline.count() > 0 ? options.deadline : options_.default_deadline);
  // An ingest session takes one request per node and call: two in flight
  // could arrive out of key order.
  const bool ingest = !options.ingest_session.empty();
  const size_t batch = ingest ? rows.size() : std::max<size_t>(1, options_.write_batch_rows);

  // Rounds: every row goes to the owners and pending replicas of its
  // partition in the current map (docs/architecture.md, "Rebalancing and
  // epoch fencing"). A node that refuses rows as routed by a stale map
  // (ABORTED) makes the client fetch the map and send those rows again to
  // the new map's replicas that have not acknowledged them yet.
  std::shared_ptr<const ClusterMapView> map = first.map;
  std::vector<std::vector<uint32_t>> acked_by(rows.size());
  std::vector<uint32_t> todo(rows.size());
  for (uint32_t i = 0; i < rows.size(); ++i) todo[i] = i;
  std::string last_error;
  absl::Status refused;  // UNAUTHENTICATED or PERMISSION_DENIED from a replica
  std::vector<std::tuple<uint32_t, std::vector<uint32_t>, std::string>> failed;
  constexpr int kMaxRounds = 4;
  for (int round = 0; round < kMaxRounds && !todo.empty(); ++round) {
    std::vector<std::pair<uint32_t, std::vector<uint32_t>>> per_node;  // node -> rows
    std::unordered_map<uint32_t, size_t> slot;
    for (uint32_t i : todo) {
      const uint32_t p = PartitionOf(rows[i].entity_key, map->num_partitions());
      auto route = [&](uint32_t node) {
        if (!map->TakesWrites(node) || map->AddressOf(node).empty()) return;
        if (std::find(acked_by[i].begin(), acked_by[i].end(), node) != acked_by[i].end()) return;
        auto [it, fresh] = slot.emplace(node, per_node.size());
        if (fresh) per_node.emplace_back(node, std::vector<uint32_t>{});
        per_node[it->second].second.push_back(i);
      };
      for (uint32_t node : map->AllReplicasOf(p)) route(node);
      for (uint32_t node : map->PendingOf(p)) route(node);
    }
    RpcFanout<quiver::v1::WriteResponse> fanout;
    for (const auto& [node, node_rows] : per_node) {
      auto stub = StubFor(map->AddressOf(node));
      for (size_t begin = 0; begin < node_rows.size(); begin += batch) {
        const size_t end = std::min(node_rows.size(), begin + batch);
        auto* call = fanout.NewCall(node, deadline);
        quiver::v1::WriteRequest req;
        req.set_view(view);
        req.set_schema_version(schema_version);
        req.set_epoch(map->epoch());
        if (ingest) req.set_ingest_session(options.ingest_session);
        std::string* wire = req.mutable_packed_rows();
        size_t bytes = 0;
        for (size_t k = begin; k < end; ++k) {
          const EncodedRow& row = rows[node_rows[k]];
          bytes += 24 + row.entity_key.size() + row.packed_values.size();
        }
        wire->reserve(bytes);
        std::string scratch;
        for (size_t k = begin; k < end; ++k) {
          AppendWire(rows[node_rows[k]], &scratch, wire);
          call->items.push_back(node_rows[k]);
        }
        fanout.Start(call, [&](grpc::ClientContext* ctx, grpc::CompletionQueue* cq) {
          return stub->PrepareAsyncWrite(ctx, req, cq);
        });
      }
    }
    std::vector<uint32_t> stale;
    while (fanout.outstanding() > 0) {
      auto* call = fanout.Next(deadline);
      if (call == nullptr) {
        last_error = "deadline exceeded";
        for (auto* c : fanout.CancelAndDrain()) failed.emplace_back(c->node, c->items, last_error);
        break;
      }
      if (call->status.ok()) {
        NoteEpoch(call->response.epoch());
        for (uint32_t i : call->items) acked_by[i].push_back(call->node);
        if (ingest) {
          absl::MutexLock lock(&ingest_mu_);
          ingest_acks_[options.ingest_session][call->node] += call->items.size();
        }
        continue;
      }
      last_error = absl::StrCat("node ", call->node, ": ", call->status.error_message(),
                                " (grpc code ", static_cast<int>(call->status.error_code()), ")");
      if (call->status.error_code() == grpc::StatusCode::ABORTED) {
        spdlog::debug("client: write refused as stale by {}; refreshing the map", last_error);
        stale.insert(stale.end(), call->items.begin(), call->items.end());
      } else if (call->status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                 call->status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
        // The caller's token or permissions: not a replica that missed
        // writes (no repair report), and every replica would refuse too.
        refused = absl::Status(static_cast<absl::StatusCode>(call->status.error_code()), last_error);
      } else {
        spdlog::debug("client: write failed on {}", last_error);
        failed.emplace_back(call->node, call->items, last_error);
      }
    }
    std::sort(stale.begin(), stale.end());
    stale.erase(std::unique(stale.begin(), stale.end()), stale.end());
    todo = std::move(stale);
    if (todo.empty() || Clock::now() >= deadline) break;
    if (absl::Status r = AwaitFetch(deadline); !r.ok()) {
      last_error = absl::StrCat("refreshing the map after a stale-map refusal: ", r.message());
      break;
    }
    map = Take().map;
  }
  if (!refused.ok()) return refused;
  // A replica that failed rows another replica took has missed writes: the
  // coordinator marks it for repair, or restarts its streams when it is a
  // move's target (docs/architecture.md, "Repair"). A bulk load reports it
  // after its commit, when the rows are visible on the replicas that took
  // them (the kill-during-materialization loss: a recovering replica that
  // refused a staged batch repaired before the peers committed it).
  for (const auto& [node, items, error] : failed) {
    const bool missed =
        std::any_of(items.begin(), items.end(), [&](uint32_t i) { return !acked_by[i].empty(); });
    if (!missed) continue;
    if (ingest) {
      absl::MutexLock lock(&ingest_mu_);
      ingest_missed_[options.ingest_session].emplace_back(node, error);
    } else {
      ReportMissedWrites(node, error);
    }
  }
  // The quorum: a majority (or write_quorum) of the owners in the map each
  // row was last routed with, counted over owners only (a pending replica
  // serves no reads yet).
  size_t below = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto owners = map->AllReplicasOf(PartitionOf(rows[i].entity_key, map->num_partitions()));
    const uint32_t need = options.write_quorum > 0 ? options.write_quorum
                                                   : static_cast<uint32_t>(owners.size() / 2 + 1);
    uint32_t acks = 0;
    for (uint32_t node : acked_by[i]) {
      acks += std::find(owners.begin(), owners.end(), node) != owners.end();
    }
    below += acks < need;
  }
  if (below == 0) return absl::OkStatus();
  if (last_error.empty()) last_error = "not enough replicas UP";
  return absl::UnavailableError(absl::StrCat(below, " of ", rows.size(), " rows of view '", view,
                                             "' below write quorum (last error: ", last_error,
                                             ")"));
}

bool ClientImpl::ReportMissedWrites(uint32_t node, const std::string& error) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kMissedWriteReportDeadline);
  quiver::v1::ReportMissedWritesRequest req;
  req.set_node_id(node);
  req.set_reason(error);
  quiver::v1::ReportMissedWritesResponse resp;
  const grpc::Status s = coordinator_->ReportMissedWrites(&ctx, req, &resp);
  if (!s.ok()) {
    // The coordinator is away; the node is repaired anyway if it went DOWN.
    spdlog::warn("client: could not report node {}'s missed writes: {}", node, s.error_message());
  }
  return s.ok();
}

absl::Status ClientImpl::FinishIngest(const std::string& session, bool commit) {
  std::unordered_map<uint32_t, uint64_t> acked;
  std::vector<std::pair<uint32_t, std::string>> missed;
  {
    absl::MutexLock lock(&ingest_mu_);
    if (auto m = ingest_missed_.find(session); m != ingest_missed_.end()) {
      missed = std::move(m->second);
      ingest_missed_.erase(m);
    }
    auto it = ingest_acks_.find(session);
    if (it == ingest_acks_.end()) return absl::OkStatus();
    acked = std::move(it->second);
    ingest_acks_.erase(it);
  }
  const Snapshot snap = Take();
  const auto deadline = DeadlineAfter(options_.default_deadline);
  RpcFanout<quiver::v1::CommitIngestResponse> fanout;
  std::string error;
  for (const auto& [node, rows] : acked) {
    const std::string& address = snap.map->AddressOf(node);
    if (address.empty()) {
      error = absl::StrCat("node ", node, " left the map with ", rows, " rows of the session");
      continue;
    }
    auto stub = StubFor(address);
    quiver::v1::CommitIngestRequest req;
    req.set_session(session);
    req.set_expected_rows(rows);
    req.set_abort(!commit);
    req.set_epoch(snap.map->epoch());
    fanout.Start(fanout.NewCall(node, deadline),
                 [&](grpc::ClientContext* ctx, grpc::CompletionQueue* cq) {
                   return stub->PrepareAsyncCommitIngest(ctx, req, cq);
                 });
  }
  absl::StatusCode code = absl::StatusCode::kUnavailable;
  while (fanout.outstanding() > 0) {
    auto* call = fanout.Next(deadline);
    if (call == nullptr) {
      fanout.CancelAndDrain();
      error = "deadline exceeded";
      code = absl::StatusCode::kDeadlineExceeded;
      break;
    }
    if (call->status.ok()) {
      NoteEpoch(call->response.epoch());
    } else {
      error = absl::StrCat("node ", call->node, ": ", call->status.error_message());
      code = static_cast<absl::StatusCode>(call->status.error_code());
    }
  }
  if (error.empty() && commit) {
    // The rows are visible on the replicas that took them: now the ones that
    // failed them repair (again). An undelivered report fails the commit, so
    // the writer rewrites the rows under a map that includes the replica.
    for (const auto& [node, reason] : missed) {
      if (!ReportMissedWrites(node, absl::StrCat("ingest session '", session, "': ", reason))) {
        return absl::UnavailableError(absl::StrCat(
            "ingest session '", session, "' committed, but node ", node,
            " missed rows of it and the coordinator could not be told; rewrite them"));
      }
    }
  }
  if (error.empty()) return absl::OkStatus();
  return absl::Status(code, absl::StrCat(commit ? "committing" : "aborting", " ingest session '",
                                         session, "': ", error));
}

}  // namespace quiver::client::internal
