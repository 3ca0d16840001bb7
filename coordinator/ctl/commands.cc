#include "ctl/commands.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ctl/csv.h"
#include "ctl/operations.h"
#include "ctl/output.h"
#include "ctl/session.h"
#include "quiver.grpc.pb.h"
#include "quiver/client/client.h"
#include "quiver/coordinator/repo.h"
#include "quiver/runtime/runtime.h"
#include "quiver/storage/offline_store.h"

namespace quiver::ctl {
namespace {

// Planning reads every file's Parquet metadata: a job over many files may take
// longer than one ordinary RPC, and giving up early would leave the caller
// believing it failed while the coordinator runs it.
constexpr std::chrono::milliseconds kPlanDeadline = std::chrono::minutes(10);


namespace v1 = quiver::v1;
using Stub = Coordinator::Stub;

constexpr size_t kGetOnlineChunkRows = 1000;
constexpr auto kPollInterval = std::chrono::milliseconds(50);

absl::Status CheckAddress(const CommandLine& cl) {
  auto hp = runtime::SplitHostPort(cl.coordinator);
  if (!hp.ok()) return absl::InvalidArgumentError(absl::StrCat("--coordinator: ", hp.status().message()));
  return absl::OkStatus();
}

absl::Status RunApply(const CommandLine& cl, bool dry_run, std::FILE* out) {
  auto registry = coordinator::LoadRepository(cl.positional[0]);
  if (!registry.ok()) return registry.status();
  auto store = storage::OfflineStore::Open();
  if (!store.ok()) return store.status();
  if (auto s = coordinator::ValidateSources(*registry, **store); !s.ok()) return s;

  v1::ApplyRegistryRequest req;
  *req.mutable_registry() = *registry;
  req.set_dry_run(dry_run);
  v1::ApplyRegistryResponse resp;
  Coordinator coord(cl);
  if (auto s = coord.Call("ApplyRegistry", &Stub::ApplyRegistry, req, &resp); !s.ok()) return s;

  const std::vector<v1::ObjectChange> changes(resp.changes().begin(), resp.changes().end());
  std::string text;
  for (const auto& c : changes) {
    const std::string line = dry_run ? PlanChangeLine(c) : ApplyChangeLine(c);
    if (!line.empty()) absl::StrAppend(&text, line, "\n");
  }
  if (dry_run) {
    absl::StrAppend(&text, PlanSummaryLine(changes), "\n");
  } else if (HasChanges(changes)) {
    absl::StrAppend(&text, "Registry version ", resp.version(), " (project ", registry->project(),
                    ")\n");
  } else {
    absl::StrAppend(&text, "No changes; registry version ", resp.version(), "\n");
  }
  Print(out, text);
  return absl::OkStatus();
}

absl::Status RunMaterialize(const CommandLine& cl, bool incremental, std::FILE* out,
                            std::FILE* err) {
  v1::MaterializeRequest req;
  int64_t start_us = 0, end_us = 0;
  if (incremental) {
    auto end = ParseTimestamp(cl.positional[0]);
    if (!end.ok()) return absl::InvalidArgumentError(absl::StrCat("END: ", end.status().message()));
    end_us = *end;
    req.set_incremental(true);
  } else {
    auto window = ParseWindow(cl.positional[0], cl.positional[1]);
    if (!window.ok()) return window.status();
    std::tie(start_us, end_us) = *window;
  }
  req.set_start_us(start_us);
  req.set_end_us(end_us);
  std::vector<std::string> views;
  if (auto it = cl.flags.find("views"); it != cl.flags.end()) {
    auto list = ParseNameList("views", it->second);
    if (!list.ok()) return list.status();
    views = *list;
  }
  for (const auto& v : views) req.add_views(v);

  const auto started = std::chrono::steady_clock::now();
  Coordinator coord(cl);
  v1::Job job;
  if (auto s = coord.Call("StartMaterialization", &Stub::StartMaterialization, req, &job,
                          kPlanDeadline);
      !s.ok()) {
    return s;
  }
  // A coordinator restart or a slow answer should not abort a long job: retry
  // transient GetJob failures for a while before giving up.
  const auto give_up_after = std::max<std::chrono::milliseconds>(
      std::chrono::seconds(10), std::chrono::milliseconds(cl.deadline_ms));
  auto failing_since = std::chrono::steady_clock::time_point::max();
  std::string last_progress;
  while (job.state() != v1::JOB_SUCCEEDED && job.state() != v1::JOB_FAILED) {
    const std::string progress = JobProgressLine(job);
    if (progress != last_progress) {
      Print(err, progress + "\n");
      last_progress = progress;
    }
    std::this_thread::sleep_for(kPollInterval);
    v1::GetJobRequest get;
    get.set_job_id(job.id());
    v1::Job next;
    absl::Status s = coord.Call("GetJob", &Stub::GetJob, get, &next);
    const auto now = std::chrono::steady_clock::now();
    if (s.ok()) {
      job = std::move(next);
      failing_since = std::chrono::steady_clock::time_point::max();
      continue;
    }
    if (!Transient(s)) return s;
    if (failing_since == std::chrono::steady_clock::time_point::max()) failing_since = now;
    if (now - failing_since > give_up_after) return s;
  }
  Print(err, JobProgressLine(job) + "\n");
  if (job.state() == v1::JOB_FAILED) {
    return absl::AbortedError(
        absl::StrCat("materialization job ", job.id(), " failed: ", job.error()));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  Print(out, MaterializeSummaryLine(job, views, start_us, end_us, seconds) + "\n");
  return absl::OkStatus();
}

// Push writes one chunk per call, so a large file is never one huge request.
constexpr size_t kPushChunkRows = 1000;

absl::Status RunPush(const CommandLine& cl, std::FILE* out) {
  const std::string& view = cl.positional[0];
  const std::string& path = cl.positional[1];
  client::WriteOptions write;
  if (auto it = cl.flags.find("write-quorum"); it != cl.flags.end()) {
    if (!absl::SimpleAtoi(it->second, &write.write_quorum) || write.write_quorum == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--write-quorum must be a positive integer, got '", it->second, "'"));
    }
  }
  write.deadline = std::chrono::milliseconds(cl.deadline_ms);
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  auto client = ConnectClient(cl);
  if (!client.ok()) return client.status();
  auto index = (*client)->registry();
  const client::ViewInfo* info = index->FindView(view);
  if (info == nullptr) return absl::NotFoundError(absl::StrCat("unknown feature view '", view, "'"));
  PushSchema schema;
  for (const client::JoinKeySpec& jk : info->join_keys) schema.join_keys[jk.join_key] = jk.type;
  for (const auto& source : index->registry().sources()) {
    if (source.name() == info->view->source()) {
      schema.timestamp_field = source.timestamp_field();
      schema.created_timestamp_column = source.created_timestamp_column();
    }
  }
  if (schema.timestamp_field.empty()) schema.timestamp_field = "event_timestamp";
  for (int i = 0; i < info->view->features_size(); ++i) {
    schema.features.emplace_back(info->view->features(i).name(), info->feature_types[i]);
  }
  auto rows = ParsePushCsv(*text, schema);
  if (!rows.ok()) {
    return absl::Status(rows.status().code(), absl::StrCat(path, ": ", rows.status().message()));
  }
  size_t pushed = 0;
  for (size_t begin = 0; begin < rows->size(); begin += kPushChunkRows) {
    const size_t end = std::min(rows->size(), begin + kPushChunkRows);
    std::vector<client::WriteRowInput> chunk(rows->begin() + begin, rows->begin() + end);
    if (absl::Status s = (*client)->Push(view, chunk, write); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("pushed ", pushed, " of ", rows->size(),
                                                 " rows, then: ", s.message()));
    }
    pushed = end;
  }
  Print(out, absl::StrCat("pushed ", pushed, " rows to ", view, "\n"));
  return absl::OkStatus();
}

absl::Status RunGetOnline(const CommandLine& cl, std::FILE* out) {
  auto selection = ParseFeatureSelection(cl);
  if (!selection.ok()) return selection.status();
  const std::vector<std::string>& refs = selection->refs;
  const std::string& service = selection->service;
  const std::string& path = cl.flags.at("entities");
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();

  auto client = ConnectClient(cl);
  if (!client.ok()) return client.status();
  auto index = (*client)->registry();
  // Unknown references are reported even when the CSV has no rows.
  auto resolved = service.empty() ? index->Resolve(refs) : index->ResolveService(service);
  if (!resolved.ok()) return resolved.status();

  std::map<std::string, ValueType> join_key_types;
  for (const auto& e : index->registry().entities()) {
    join_key_types.emplace(e.join_key(), static_cast<ValueType>(e.value_type()));
  }
  // On-demand views' request fields come as more columns of the CSV.
  for (const auto& odfv : index->registry().on_demand_feature_views()) {
    for (const auto& field : odfv.request_schema()) {
      join_key_types.emplace(field.name(), static_cast<ValueType>(field.type()));
    }
  }
  auto entities = ParseEntityCsv(*text, join_key_types);
  if (!entities.ok()) {
    return absl::Status(entities.status().code(),
                        absl::StrCat(path, ": ", entities.status().message()));
  }

  for (size_t begin = 0; begin < entities->rows.size(); begin += kGetOnlineChunkRows) {
    const size_t end = std::min(entities->rows.size(), begin + kGetOnlineChunkRows);
    client::OnlineRequest req;
    req.features = refs;
    req.feature_service = service;
    req.deadline = std::chrono::milliseconds(cl.deadline_ms);
    req.entity_rows.assign(entities->rows.begin() + begin, entities->rows.begin() + end);
    auto resp = (*client)->GetOnlineFeatures(req);
    if (!resp.ok()) return resp.status();
    if (resp->rows.size() != req.entity_rows.size()) {
      return absl::InternalError(absl::StrCat("the client returned ", resp->rows.size(),
                                              " rows for ", req.entity_rows.size()));
    }
    std::string lines;
    for (size_t r = 0; r < resp->rows.size(); ++r) {
      absl::StrAppend(&lines,
                      OnlineRowJson(entities->header, req.entity_rows[r], resp->feature_refs,
                                    resp->rows[r]),
                      "\n");
    }
    Print(out, lines);
  }
  return absl::OkStatus();
}

absl::Status RunRegistryDump(const CommandLine& cl, std::FILE* out) {
  Coordinator coord(cl);
  v1::Registry registry;
  if (auto s = coord.Call("GetRegistry", &Stub::GetRegistry, v1::GetRegistryRequest(), &registry);
      !s.ok()) {
    return s;
  }
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (auto s = google::protobuf::util::MessageToJsonString(registry, &json, options); !s.ok()) {
    return absl::InternalError(absl::StrCat("cannot print the registry as JSON: ", s.ToString()));
  }
  if (json.empty() || json.back() != '\n') json.push_back('\n');
  Print(out, json);
  return absl::OkStatus();
}

absl::Status RunNodes(const CommandLine& cl, std::FILE* out) {
  Coordinator coord(cl);
  v1::ListNodesResponse resp;
  if (auto s = coord.Call("ListNodes", &Stub::ListNodes, v1::ListNodesRequest(), &resp); !s.ok()) {
    return s;
  }
  Print(out, NodesTable(resp));
  return absl::OkStatus();
}

}  // namespace

absl::Status RunCommand(const CommandLine& cl, std::FILE* out, std::FILE* err) {
  if (auto s = CheckAddress(cl); !s.ok()) return s;
  if (auto s = UseSecurity(cl); !s.ok()) return s;
  const std::string& c = cl.command;
  if (c == "apply") return RunApply(cl, /*dry_run=*/false, out);
  if (c == "plan") return RunApply(cl, /*dry_run=*/true, out);
  if (c == "materialize") return RunMaterialize(cl, /*incremental=*/false, out, err);
  if (c == "materialize-incremental") return RunMaterialize(cl, /*incremental=*/true, out, err);
  if (c == "get-online") return RunGetOnline(cl, out);
  if (c == "get-historical") return RunGetHistorical(cl, out, err);
  if (c == "push") return RunPush(cl, out);
  if (c == "registry-dump") return RunRegistryDump(cl, out);
  if (c == "nodes" && !cl.positional.empty()) return RunNodesChange(cl, out, err);
  if (c == "nodes") return RunNodes(cl, out);
  if (c == "rebalance") return RunRebalance(cl, out, err);
  if (c == "backup" && cl.positional[0] == "create") return RunBackupCreate(cl, out, err);
  if (c == "backup") return RunBackupList(cl, out, err);
  if (c == "restore") return RunRestore(cl, out, err);
  if (c == "verify") return RunVerify(cl, out, err);
  return absl::InvalidArgumentError(absl::StrCat("unknown command '", c, "'"));
}

}  // namespace quiver::ctl
