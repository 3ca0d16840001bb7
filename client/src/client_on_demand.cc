// On-demand features online (issue 12): the stored features a request names
// and the source features its on-demand features read are fetched by one
// Lookup; each on-demand feature is then evaluated per row by
// quiver::expr::OnDemandView, the evaluator get-historical uses offline.
// Feast's rules (feast-compat.md §4.2): request fields come with the entity
// rows; the result has status PRESENT (NULL_VALUE when null) and no event
// timestamp.
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "client_impl.h"

namespace quiver::client::internal {

absl::StatusOr<OnlineResponse> ClientImpl::LookupOnDemand(
    const OnlineRequest& request, const std::vector<ResolvedFeature>& resolved,
    const Snapshot& snap, Clock::time_point deadline, bool* stale) {
  // What to fetch: every stored feature requested, then every source
  // feature an on-demand one reads; each once.
  OnlineRequest fetch;
  fetch.deadline = request.deadline;
  std::map<std::string, size_t> column;
  auto want = [&](const std::string& ref) {
    if (column.emplace(ref, fetch.features.size()).second) fetch.features.push_back(ref);
  };
  for (const ResolvedFeature& f : resolved) {
    if (f.on_demand == nullptr) {
      want(f.ref);
      continue;
    }
    for (int i : f.on_demand->used_inputs(static_cast<size_t>(f.index))) {
      const expr::Input& in = f.on_demand->inputs()[static_cast<size_t>(i)];
      if (!in.view.empty()) want(absl::StrCat(in.view, ":", in.name));
    }
  }
  OnlineResponse fetched;
  if (!fetch.features.empty()) {
    fetch.entity_rows = request.entity_rows;
    absl::StatusOr<OnlineResponse> got = Lookup(fetch, snap, deadline, stale);
    if (!got.ok()) return got.status();
    fetched = *std::move(got);
  }

  // Where each output column's values come from, worked out once: a fetched
  // column, or for an on-demand feature the fetched column of each input it
  // reads (npos: a request field, from the entity row).
  constexpr size_t kRequestField = static_cast<size_t>(-1);
  struct Source {
    size_t column = 0;                               // stored features
    std::vector<std::pair<int, size_t>> inputs;      // on-demand: (input, column)
  };
  std::vector<Source> sources(resolved.size());
  for (size_t c = 0; c < resolved.size(); ++c) {
    const ResolvedFeature& f = resolved[c];
    if (f.on_demand == nullptr) {
      sources[c].column = column.at(f.ref);
      continue;
    }
    for (int i : f.on_demand->used_inputs(static_cast<size_t>(f.index))) {
      const expr::Input& in = f.on_demand->inputs()[static_cast<size_t>(i)];
      sources[c].inputs.emplace_back(
          i, in.view.empty() ? kRequestField : column.at(absl::StrCat(in.view, ":", in.name)));
    }
  }

  OnlineResponse response;
  for (const ResolvedFeature& f : resolved) response.feature_refs.push_back(f.ref);
  response.rows.resize(request.entity_rows.size());
  std::vector<Value> inputs;
  for (size_t r = 0; r < request.entity_rows.size(); ++r) {
    const std::map<std::string, Value>& entity = request.entity_rows[r];
    std::vector<FeatureValue>& row = response.rows[r];
    row.reserve(resolved.size());
    for (size_t c = 0; c < resolved.size(); ++c) {
      const ResolvedFeature& f = resolved[c];
      if (f.on_demand == nullptr) {
        row.push_back(fetched.rows[r][sources[c].column]);
        continue;
      }
      const expr::OnDemandView& odfv = *f.on_demand;
      inputs.assign(odfv.inputs().size(), Value::Null(ValueType::kInvalid));
      for (const auto& [i, col] : sources[c].inputs) {
        const expr::Input& in = odfv.inputs()[static_cast<size_t>(i)];
        Value& v = inputs[static_cast<size_t>(i)];
        if (col != kRequestField) {
          // A source row not found or past its TTL reads as null, as
          // get-historical's join gives null for it.
          const FeatureValue& fv = fetched.rows[r][col];
          v = fv.status == FeatureStatus::kPresent ? fv.value : Value::Null(in.type);
          continue;
        }
        auto it = entity.find(in.name);
        if (it == entity.end()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "entity row ", r, " lacks request field '", in.name, "' of on-demand feature view '",
              odfv.name(), "'"));
        }
        if (it->second.type != in.type) {
          return absl::InvalidArgumentError(absl::StrCat(
              "entity row ", r, ": request field '", in.name, "' is ", TypeName(it->second.type),
              ", declared ", TypeName(in.type)));
        }
        v = it->second;
      }
      FeatureValue out;
      out.value = odfv.Evaluate(static_cast<size_t>(f.index), inputs);
      out.status = out.value.is_null() ? FeatureStatus::kNullValue : FeatureStatus::kPresent;
      row.push_back(std::move(out));
    }
  }
  return response;
}

}  // namespace quiver::client::internal
