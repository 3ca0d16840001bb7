#include "ctl/args.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "quiver/keys/value.h"

namespace quiver::ctl {
namespace {

struct CommandSpec {
  const char* name;
  size_t positional;  // exact count, or the least when max_positional is larger
  std::set<std::string> flags;
  size_t max_positional = 0;  // 0: exactly `positional`
};

// Flags that take no value (present means "true").
bool IsBooleanFlag(const std::string& arg) {
  return arg == "--wait" || arg == "--full-feature-names";
}

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> kCommands = {
      {"apply", 1, {}},
      {"plan", 1, {}},
      {"materialize", 2, {"views"}},
      {"materialize-incremental", 1, {"views"}},
      {"get-online", 0, {"features", "feature-service", "entities"}},
      {"get-historical", 0,
       {"features", "feature-service", "entities", "output", "full-feature-names"}},
      {"push", 2, {"write-quorum"}},
      {"registry-dump", 0, {}},
      {"nodes", 0, {"wait"}, 2},
      {"rebalance", 0, {"wait"}},
      {"backup", 1, {"dest"}},
      {"restore", 0, {"from", "scratch"}},
      {"verify", 0, {"views"}},
      {"help", 0, {}},
  };
  return kCommands;
}

bool IsHelp(const std::string& arg) { return arg == "--help" || arg == "-h"; }

// Splits "--name=value" / "--name value" at args[*i]; advances *i past the value.
absl::Status TakeFlag(const std::vector<std::string>& args, size_t* i, std::string* name,
                      std::string* value) {
  *name = args[*i].substr(2);
  if (auto eq = name->find('='); eq != std::string::npos) {
    *value = name->substr(eq + 1);
    *name = name->substr(0, eq);
  } else if (*i + 1 < args.size()) {
    *value = args[++*i];
  } else {
    return absl::InvalidArgumentError(absl::StrCat("flag --", *name, " needs a value"));
  }
  if (name->empty()) return absl::InvalidArgumentError("empty flag name");
  return absl::OkStatus();
}

bool IsFlag(const std::string& arg) { return arg.size() > 2 && arg.rfind("--", 0) == 0; }

// Global flags are accepted after the command too. Returns false when `name`
// is not a global flag.
absl::StatusOr<bool> TakeGlobalFlag(const std::string& name, const std::string& value,
                                    CommandLine* cl) {
  if (name == "coordinator") {
    if (value.empty()) return absl::InvalidArgumentError("--coordinator needs HOST:PORT");
    cl->coordinator = value;
  } else if (name == "log-level") {
    cl->log_level = value;
  } else if (name == "deadline-ms") {
    if (!absl::SimpleAtoi(value, &cl->deadline_ms) || cl->deadline_ms <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--deadline-ms must be a positive integer, got '", value, "'"));
    }
  } else if (name == "offline-memory-mb") {
    if (!absl::SimpleAtoi(value, &cl->offline_memory_mb) || cl->offline_memory_mb <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--offline-memory-mb must be a positive integer, got '", value, "'"));
    }
  } else if (name == "tls-ca" || name == "tls-cert" || name == "tls-key" || name == "token-file") {
    if (value.empty()) return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a file"));
    (name == "tls-ca"     ? cl->tls_ca
     : name == "tls-cert" ? cl->tls_cert
     : name == "tls-key"  ? cl->tls_key
                          : cl->token_file) = value;
  } else if (name == "offline-temp-dir") {
    if (value.empty()) return absl::InvalidArgumentError("--offline-temp-dir needs a folder");
    cl->offline_temp_dir = value;
  } else {
    return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<CommandLine> ParseCommandLine(const std::vector<std::string>& args,
                                             const char* env_coordinator) {
  CommandLine cl;
  if (env_coordinator != nullptr && *env_coordinator != '\0') cl.coordinator = env_coordinator;
  for (const auto& a : args) {
    if (IsHelp(a)) {
      cl.help = true;
      return cl;
    }
  }
  size_t i = 0;
  for (; i < args.size() && IsFlag(args[i]); ++i) {
    std::string name, value;
    if (auto s = TakeFlag(args, &i, &name, &value); !s.ok()) return s;
    auto global = TakeGlobalFlag(name, value, &cl);
    if (!global.ok()) return global.status();
    if (!*global) return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
  }
  if (i == args.size()) return absl::InvalidArgumentError("no command given");
  cl.command = args[i++];
  const CommandSpec* spec = nullptr;
  for (const auto& c : Commands()) {
    if (cl.command == c.name) spec = &c;
  }
  if (spec == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown command '", cl.command, "'"));
  }
  for (; i < args.size(); ++i) {
    if (!IsFlag(args[i])) {
      cl.positional.push_back(args[i]);
      continue;
    }
    if (IsBooleanFlag(args[i])) {
      const std::string name = args[i].substr(2);
      if (!spec->flags.count(name)) {
        return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " for ", cl.command));
      }
      cl.flags[name] = "true";
      continue;
    }
    std::string name, value;
    if (auto s = TakeFlag(args, &i, &name, &value); !s.ok()) return s;
    auto global = TakeGlobalFlag(name, value, &cl);
    if (!global.ok()) return global.status();
    if (*global) continue;
    if (!spec->flags.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " for ", cl.command));
    }
    if (cl.flags.count(name)) {
      return absl::InvalidArgumentError(absl::StrCat("flag --", name, " given twice"));
    }
    cl.flags[name] = value;
  }
  if (cl.command == "help") {
    cl.help = true;
    return cl;
  }
  const size_t most = std::max(spec->positional, spec->max_positional);
  if (cl.positional.size() < spec->positional || cl.positional.size() > most) {
    return absl::InvalidArgumentError(absl::StrCat(
        cl.command, " takes ", spec->positional,
        most > spec->positional ? absl::StrCat(" to ", most) : std::string(), " argument(s), got ",
        cl.positional.size()));
  }
  if (cl.command == "nodes" && !cl.positional.empty()) {
    uint32_t id = 0;
    const bool known = cl.positional[0] == "drain" || cl.positional[0] == "remove";
    if (!known || cl.positional.size() != 2 || !absl::SimpleAtoi(cl.positional[1], &id) || id == 0) {
      return absl::InvalidArgumentError(
          "nodes takes no argument (list), or drain ID or remove ID (a node id from the list)");
    }
    if (cl.positional[0] == "remove" && cl.flags.count("wait")) {
      return absl::InvalidArgumentError("nodes remove takes no --wait");
    }
  } else if (cl.command == "nodes" && cl.flags.count("wait")) {
    return absl::InvalidArgumentError("--wait goes with nodes drain ID");
  }
  if (cl.command == "backup" && cl.positional[0] != "create" && cl.positional[0] != "list") {
    return absl::InvalidArgumentError(
        absl::StrCat("backup takes create or list, got '", cl.positional[0], "'"));
  }
  if (cl.command == "restore" && !cl.flags.count("from")) {
    return absl::InvalidArgumentError("restore needs --from DIR");
  }
  if (cl.command == "get-online" || cl.command == "get-historical") {
    if (!cl.flags.count("entities")) {
      return absl::InvalidArgumentError(absl::StrCat(
          cl.command, " needs --entities FILE", cl.command == "get-online" ? ".csv" : ""));
    }
    if (cl.flags.count("features") == cl.flags.count("feature-service")) {
      return absl::InvalidArgumentError(
          absl::StrCat(cl.command, " needs exactly one of --features and --feature-service"));
    }
  }
  return cl;
}

std::string UsageText() {
  return "usage: quiverctl [--coordinator HOST:PORT] [--log-level L] [--deadline-ms N]\n"
         "                 [--tls-ca FILE [--tls-cert FILE --tls-key FILE]] [--token-file FILE] COMMAND ...\n"
         "\n"
         "commands:\n"
         "  apply REPO_DIR                 validate a feature repository and apply it to the registry\n"
         "  plan REPO_DIR                  show what apply would change, change nothing\n"
         "  materialize START END [--views a,b]\n"
         "                                 load rows with event time in [START, END) into the online store\n"
         "  materialize-incremental END [--views a,b]\n"
         "                                 materialize from where each view's last materialization ended\n"
         "  get-online (--features REF,REF... | --feature-service NAME) --entities FILE.csv\n"
         "                                 look up online features; one JSON object per CSV row\n"
         "  get-historical (--features REF,REF... | --feature-service NAME) --entities FILE\n"
         "                 [--output FILE] [--full-feature-names]\n"
         "                                 a training set: each entity row (CSV or Parquet: join keys,\n"
         "                                 event_timestamp, any other columns) with the features as of\n"
         "                                 its timestamp (point-in-time join, TTL applied); Parquet when\n"
         "                                 FILE ends in .parquet, else CSV (stdout without --output)\n"
         "  push VIEW FILE.csv [--write-quorum N]\n"
         "                                 write rows (join keys, event timestamp, every feature) to\n"
         "                                 every replica; fails unless each row reached its quorum\n"
         "  registry-dump                  print the registry as JSON\n"
         "  nodes                          list the cluster's nodes, the map epoch and move progress\n"
         "  nodes drain ID [--wait]        move every replica off node ID (LEAVING); --wait returns\n"
         "                                 once it holds nothing\n"
         "  nodes remove ID                forget a drained node, or a DOWN node whose disk is gone\n"
         "                                 (its partitions get new replicas from the survivors)\n"
         "  rebalance [--wait]             move partitions until every node holds its share; --wait\n"
         "                                 prints progress until nothing moves and every partition\n"
         "                                 has R replicas serving reads\n"
         "  backup create [--dest DIR]     back up every UP node (RocksDB, incremental), the registry,\n"
         "                                 the map and the intervals, with a manifest of per-view row\n"
         "                                 counts and checksums (DIR: $QUIVER_BACKUP_DIR, else\n"
         "                                 ./quiver-backups; it must be reachable by every node)\n"
         "  backup list [--dest DIR]       list the backups in DIR\n"
         "  restore --from DIR [--scratch DIR]\n"
         "                                 rebuild a fresh cluster of any size from a backup (DIR: a\n"
         "                                 backup's folder, or the backup root for its newest)\n"
         "  verify [--views a,b]           compare the online store with the offline store: the latest\n"
         "                                 row per entity key in the materialized intervals, TTL applied;\n"
         "                                 mismatch counts per view, exit 1 if any\n"
         "  help                           print this text\n"
         "\n"
         "flags:\n"
         "  --coordinator HOST:PORT        coordinator address (default $QUIVER_COORDINATOR, else "
         "127.0.0.1:6000)\n"
         "  --log-level L                  trace, debug, info, warn (default), error\n"
         "  --deadline-ms N                deadline of each RPC in milliseconds (default 10000)\n"
         "  --offline-memory-mb N          DuckDB's memory cap for get-historical; beyond it joins\n"
         "                                 spill to disk (default: DuckDB's, 80% of RAM)\n"
         "  --offline-temp-dir DIR         where get-historical spills (default: the system's temp)\n"
         "  --tls-ca FILE                  use TLS; verify the servers with this CA (PEM)\n"
         "  --tls-cert FILE --tls-key FILE a client certificate, for mutual TLS\n"
         "  --token-file FILE              present the bearer token in FILE (first line)\n"
         "\n"
         "Times are ISO-8601 (2001-01-01 or 2001-01-01T06:00:00Z); no zone means UTC.\n";
}

absl::StatusOr<FeatureSelection> ParseFeatureSelection(const CommandLine& cl) {
  FeatureSelection selection;
  if (auto it = cl.flags.find("features"); it != cl.flags.end()) {
    auto list = ParseNameList("features", it->second);
    if (!list.ok()) return list.status();
    selection.refs = *std::move(list);
  } else {
    selection.service = cl.flags.at("feature-service");
  }
  return selection;
}

absl::StatusOr<std::vector<std::string>> ParseNameList(const std::string& flag,
                                                       const std::string& text) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    std::string name(absl::StripAsciiWhitespace(part));
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, " has an empty name in '", text, "'"));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, " names '", name, "' twice"));
    }
    names.push_back(std::move(name));
  }
  return names;
}

absl::StatusOr<std::pair<int64_t, int64_t>> ParseWindow(const std::string& start,
                                                        const std::string& end) {
  auto s = ParseTimestamp(start);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("START: ", s.status().message()));
  auto e = ParseTimestamp(end);
  if (!e.ok()) return absl::InvalidArgumentError(absl::StrCat("END: ", e.status().message()));
  if (*s >= *e) {
    return absl::InvalidArgumentError(absl::StrCat("START ", FormatTimestamp(*s),
                                                   " is not before END ", FormatTimestamp(*e)));
  }
  return std::make_pair(*s, *e);
}

}  // namespace quiver::ctl
