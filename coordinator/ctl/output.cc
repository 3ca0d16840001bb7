#include "ctl/output.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace quiver::ctl {
namespace {

void AppendJsonKey(const std::string& key, std::string* out) {
  AppendJson(Value::String(key), out);
  out->push_back(':');
}

const char* StateName(quiver::v1::NodeState s) {
  switch (s) {
    case quiver::v1::UP: return "UP";
    case quiver::v1::DOWN: return "DOWN";
    case quiver::v1::RECOVERING: return "RECOVERING";
    case quiver::v1::JOINING: return "JOINING";
    case quiver::v1::LEAVING: return "LEAVING";
    default: return "UNKNOWN";
  }
}

}  // namespace

std::string OnlineRowJson(const std::vector<std::string>& header,
                          const std::map<std::string, Value>& entity_row,
                          const std::vector<std::string>& feature_refs,
                          const std::vector<client::FeatureValue>& values) {
  std::string out = "{";
  for (const std::string& key : header) {
    AppendJsonKey(key, &out);
    auto it = entity_row.find(key);
    if (it == entity_row.end()) {
      out.append("null");
    } else {
      AppendJson(it->second, &out);
    }
    out.push_back(',');
  }
  out.append("\"features\":{");
  for (size_t f = 0; f < feature_refs.size(); ++f) {
    if (f > 0) out.push_back(',');
    AppendJsonKey(feature_refs[f], &out);
    if (f >= values.size()) {  // never from a well-formed response; stay valid JSON
      out.append("null");
      continue;
    }
    const client::FeatureValue& fv = values[f];
    out.append("{\"value\":");
    AppendJson(fv.value, &out);
    absl::StrAppend(&out, ",\"status\":\"", client::FeatureStatusName(fv.status),
                    "\",\"event_timestamp\":");
    if (fv.status == client::FeatureStatus::kNotFound) {
      out.append("null");
    } else {
      absl::StrAppend(&out, "\"", FormatTimestamp(fv.event_ts_us), "\"");
    }
    out.push_back('}');
  }
  out.append("}}");
  return out;
}

std::string KindName(const std::string& kind) {
  return absl::StrReplaceAll(kind, {{"_", " "}});
}

std::string ApplyChangeLine(const quiver::v1::ObjectChange& change) {
  const std::string& a = change.action();
  std::string verb;
  if (a == "created") {
    verb = "Created";
  } else if (a == "updated") {
    verb = "Updated";
  } else if (a == "deleted") {
    verb = "Deleted";
  } else if (a == "unchanged") {
    return "";
  } else {
    verb = a;  // an action this build does not know: show it as sent
  }
  return absl::StrCat(verb, " ", KindName(change.kind()), " ", change.name());
}

std::string PlanChangeLine(const quiver::v1::ObjectChange& change) {
  const std::string& a = change.action();
  std::string sign;
  if (a == "created") {
    sign = "+";
  } else if (a == "updated") {
    sign = "~";
  } else if (a == "deleted") {
    sign = "-";
  } else if (a == "unchanged") {
    return "";
  } else {
    sign = a;
  }
  return absl::StrCat(sign, " ", KindName(change.kind()), " ", change.name());
}

std::string PlanSummaryLine(const std::vector<quiver::v1::ObjectChange>& changes) {
  int created = 0, updated = 0, deleted = 0;
  for (const auto& c : changes) {
    created += c.action() == "created";
    updated += c.action() == "updated";
    deleted += c.action() == "deleted";
  }
  return absl::StrCat("Plan: ", created, " to create, ", updated, " to update, ", deleted,
                      " to delete");
}

bool HasChanges(const std::vector<quiver::v1::ObjectChange>& changes) {
  return std::any_of(changes.begin(), changes.end(),
                     [](const auto& c) { return c.action() != "unchanged"; });
}

std::string NodesTable(const quiver::v1::ListNodesResponse& nodes) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "ADDRESS", "STATE", "PARTITIONS", "PREFERRED", "LAST_HEARTBEAT"}};
  std::vector<const quiver::v1::NodeSummary*> sorted;
  for (const auto& n : nodes.nodes()) sorted.push_back(&n);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* a, const auto* b) { return a->node().id() < b->node().id(); });
  for (const auto* n : sorted) {
    const auto& info = n->node();
    rows.push_back({absl::StrCat(info.id()), info.address(),
                    info.removed() ? std::string("DOWN(removed)") : std::string(StateName(info.state())),
                    absl::StrCat(n->partitions_held()), absl::StrCat(n->partitions_preferred()),
                    info.last_heartbeat_us() == 0 ? "-" : FormatTimestamp(info.last_heartbeat_us())});
  }
  std::vector<size_t> width(rows.front().size(), 0);
  for (const auto& r : rows) {
    for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      line.append(r[c]);
      if (c + 1 < r.size()) line.append(width[c] - r[c].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  absl::StrAppend(&out, "epoch=", nodes.epoch(), "\n");
  const auto& r = nodes.rebalance();
  absl::StrAppend(&out, "moves: active=", r.moves_active(), " done=", r.moves_done(), "/",
                  r.moves_total(), " rows=", r.rows_streamed(), " bytes=", r.bytes_streamed(), "\n");
  return out;
}

std::string JobProgressLine(const quiver::v1::Job& job) {
  int done = 0;
  for (const auto& t : job.tasks()) done += t.state() == "done";
  return absl::StrCat("tasks ", done, "/", job.tasks_size(), " done, ", job.rows_written(),
                      " rows");
}

std::string MaterializeSummaryLine(const quiver::v1::Job& job,
                                   const std::vector<std::string>& views, int64_t start_us,
                                   int64_t end_us, double seconds) {
  std::vector<std::string> names;
  int64_t start = start_us;
  for (int w = 0; w < job.windows_size(); ++w) {
    const auto& win = job.windows(w);
    if (std::find(names.begin(), names.end(), win.view()) == names.end()) {
      names.push_back(win.view());
    }
    start = w == 0 ? win.start_us() : std::min(start, win.start_us());
  }
  if (names.empty()) names = views;
  char secs[32];
  std::snprintf(secs, sizeof(secs), "%.1f", seconds);
  return absl::StrCat("Materialized ", job.rows_written(), " rows for ",
                      names.empty() ? std::string("no views") : absl::StrJoin(names, ","), " [",
                      FormatTimestamp(start), ", ", FormatTimestamp(end_us), ") in ", secs, " s");
}

}  // namespace quiver::ctl
