// Unit tests of quiverctl's pure parts: the command line, the entity CSV
// reader and the exact text other tools parse (get-online's JSON lines, apply
// and plan lines, the nodes table, materialization lines).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <tuple>

#include "ctl/args.h"
#include "ctl/backup_plan.h"
#include "ctl/csv.h"
#include "ctl/output.h"

namespace quiver::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kSecond = 1000000;

// ---------------------------------------------------------------- command line

TEST(CommandLineTest, ParsesGlobalFlagsThenCommand) {
  auto cl = ParseCommandLine({"--coordinator", "10.0.0.1:7000", "--deadline-ms=2500",
                              "--log-level", "debug", "apply", "repo"},
                             nullptr);
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->coordinator, "10.0.0.1:7000");
  EXPECT_EQ(cl->deadline_ms, 2500);
  EXPECT_EQ(cl->log_level, "debug");
  EXPECT_EQ(cl->command, "apply");
  EXPECT_THAT(cl->positional, ElementsAre("repo"));
  EXPECT_FALSE(cl->help);
}

TEST(CommandLineTest, CoordinatorComesFromFlagThenEnvThenDefault) {
  EXPECT_EQ(ParseCommandLine({"nodes"}, nullptr)->coordinator, "127.0.0.1:6000");
  EXPECT_EQ(ParseCommandLine({"nodes"}, "")->coordinator, "127.0.0.1:6000");
  EXPECT_EQ(ParseCommandLine({"nodes"}, "h:1")->coordinator, "h:1");
  EXPECT_EQ(ParseCommandLine({"--coordinator=f:2", "nodes"}, "h:1")->coordinator, "f:2");
}

TEST(CommandLineTest, CommandFlagsInAnyOrder) {
  auto cl = ParseCommandLine({"materialize", "--views", "a,b", "2001-01-01", "2001-02-01"}, nullptr);
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_THAT(cl->positional, ElementsAre("2001-01-01", "2001-02-01"));
  EXPECT_EQ(cl->flags.at("views"), "a,b");

  cl = ParseCommandLine({"get-online", "--entities=e.csv", "--feature-service", "svc"}, nullptr);
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->flags.at("entities"), "e.csv");
  EXPECT_EQ(cl->flags.at("feature-service"), "svc");
}

TEST(CommandLineTest, GlobalFlagsMayFollowTheCommand) {
  auto cl = ParseCommandLine({"nodes", "--coordinator", "h:9", "--deadline-ms=5"}, nullptr);
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->coordinator, "h:9");
  EXPECT_EQ(cl->deadline_ms, 5);
  EXPECT_TRUE(cl->positional.empty());
}

TEST(CommandLineTest, NodesDrainRemoveAndRebalanceTakeWaitWithoutAValue) {
  auto cl = ParseCommandLine({"nodes", "drain", "3", "--wait"}, nullptr);
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->positional, (std::vector<std::string>{"drain", "3"}));
  EXPECT_EQ(cl->flags.at("wait"), "true");
  cl = ParseCommandLine({"nodes", "--wait", "drain", "3"}, nullptr);
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->positional, (std::vector<std::string>{"drain", "3"}));
  cl = ParseCommandLine({"nodes", "remove", "12"}, nullptr);
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_FALSE(cl->flags.count("wait"));
  cl = ParseCommandLine({"rebalance", "--wait"}, nullptr);
  ASSERT_TRUE(cl.ok()) << cl.status();
  EXPECT_EQ(cl->flags.at("wait"), "true");
  EXPECT_TRUE(ParseCommandLine({"rebalance"}, nullptr).ok());
}

TEST(CommandLineTest, HelpAnywhereAndHelpCommand) {
  EXPECT_TRUE(ParseCommandLine({"--help"}, nullptr)->help);
  EXPECT_TRUE(ParseCommandLine({"apply", "-h"}, nullptr)->help);
  EXPECT_TRUE(ParseCommandLine({"help"}, nullptr)->help);
  EXPECT_TRUE(ParseCommandLine({"bogus", "--help"}, nullptr)->help);
}

TEST(CommandLineTest, RejectsBadCommandLines) {
  const std::vector<std::vector<std::string>> bad = {
      {},                                                     // no command
      {"frobnicate"},                                         // unknown command
      {"--bogus", "1", "nodes"},                              // unknown global flag
      {"nodes", "--views", "a"},                              // flag of another command
      {"apply"},                                              // missing REPO_DIR
      {"apply", "a", "b"},                                    // too many
      {"materialize", "2001-01-01"},                          // missing END
      {"--deadline-ms", "0", "nodes"},                        // not positive
      {"--deadline-ms", "x", "nodes"},                        // not a number
      {"--coordinator"},                                      // missing value
      {"get-online", "--features", "v:f"},                    // no --entities
      {"get-online", "--entities", "e.csv"},                  // no features
      {"get-online", "--entities", "e.csv", "--features", "v:f", "--feature-service", "s"},
      {"materialize-incremental", "2001-01-01", "--views", "a", "--views", "b"},
      {"nodes", "drain"},                                     // no id
      {"nodes", "drain", "x"},                                // not an id
      {"nodes", "drain", "0"},                                // not an id
      {"nodes", "evict", "3"},                                // unknown action
      {"nodes", "remove", "3", "--wait"},                     // remove does not wait
      {"nodes", "--wait"},                                    // --wait without drain
      {"nodes", "drain", "3", "4"},                           // too many
      {"rebalance", "now"},                                   // no argument
  };
  for (const auto& args : bad) {
    auto cl = ParseCommandLine(args, nullptr);
    EXPECT_EQ(cl.status().code(), absl::StatusCode::kInvalidArgument)
        << testing::PrintToString(args);
  }
  EXPECT_THAT(ParseCommandLine({"frobnicate"}, nullptr).status().message(),
              HasSubstr("frobnicate"));
}

TEST(CommandLineTest, UsageListsEveryCommand) {
  const std::string usage = UsageText();
  for (const char* c : {"apply", "plan", "materialize", "materialize-incremental", "get-online",
                        "registry-dump", "nodes", "nodes drain", "nodes remove", "rebalance",
                        "help", "--coordinator", "--deadline-ms"}) {
    EXPECT_THAT(usage, HasSubstr(c));
  }
}

TEST(NameListTest, SplitsKeepsOrderRejectsEmptyAndDuplicates) {
  EXPECT_THAT(*ParseNameList("views", "b,a, c"), ElementsAre("b", "a", "c"));
  EXPECT_THAT(*ParseNameList("features", "route_stats:delay"), ElementsAre("route_stats:delay"));
  EXPECT_EQ(ParseNameList("views", "a,,b").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseNameList("views", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseNameList("views", "a,b,a").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(WindowTest, ParsesIsoTimesAsUtc) {
  auto w = ParseWindow("2001-01-01", "2001-01-02T06:30:00+02:00");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->first, 978307200 * kSecond);  // date -u -d 2001-01-01 +%s
  EXPECT_EQ(w->second, (978307200 + 86400 + 4 * 3600 + 30 * 60) * kSecond);
}

TEST(WindowTest, RejectsMalformedAndEmptyWindows) {
  EXPECT_EQ(ParseWindow("yesterday", "2001-01-02").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ParseWindow("yesterday", "2001-01-02").status().message(), HasSubstr("START"));
  EXPECT_THAT(ParseWindow("2001-01-02", "soon").status().message(), HasSubstr("END"));
  EXPECT_EQ(ParseWindow("2001-01-02", "2001-01-02").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseWindow("2001-01-03", "2001-01-02").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ------------------------------------------------------------------------ CSV

std::vector<std::vector<std::string>> Cells(const std::vector<CsvRecord>& records) {
  std::vector<std::vector<std::string>> out;
  for (const auto& r : records) out.push_back(r.cells);
  return out;
}

TEST(CsvTest, SplitsPlainRecordsWithLfOrCrlf) {
  auto r = ParseCsv("a,b\r\n1,2\n3,\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Cells(*r), (std::vector<std::vector<std::string>>{{"a", "b"}, {"1", "2"}, {"3", ""}}));
  EXPECT_EQ((*r)[2].line, 3);
}

TEST(CsvTest, QuotedFieldsHoldCommasQuotesAndLineBreaks) {
  auto r = ParseCsv("k,v\n\"a,b\",\"say \"\"hi\"\"\"\n\"line1\nline2\",x\nlast,\"\"");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Cells(*r), (std::vector<std::vector<std::string>>{
                           {"k", "v"}, {"a,b", "say \"hi\""}, {"line1\nline2", "x"}, {"last", ""}}));
  // The record after a two-line field starts on line 5.
  EXPECT_EQ((*r)[2].line, 3);
  EXPECT_EQ((*r)[3].line, 5);
}

TEST(CsvTest, SkipsEmptyLinesButCountsThem) {
  auto r = ParseCsv("a\n\n\r\nx\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Cells(*r), (std::vector<std::vector<std::string>>{{"a"}, {"x"}}));
  EXPECT_EQ((*r)[1].line, 4);
  EXPECT_TRUE(ParseCsv("")->empty());
}

TEST(CsvTest, IgnoresLeadingByteOrderMark) {
  auto r = ParseCsv("\xEF\xBB\xBForigin\nLAX\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Cells(*r), (std::vector<std::vector<std::string>>{{"origin"}, {"LAX"}}));
}

TEST(CsvTest, RejectsMalformedQuotingWithLineNumber) {
  auto unterminated = ParseCsv("a\n\"open,\nstill open");
  EXPECT_EQ(unterminated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unterminated.status().message(), HasSubstr("line 2"));
  auto stray = ParseCsv("a,b\nx,y\"z\n");
  EXPECT_EQ(stray.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(stray.status().message(), HasSubstr("line 2"));
  auto after = ParseCsv("a\n\"q\"x\n");
  EXPECT_EQ(after.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(after.status().message(), HasSubstr("line 2"));
}

const std::map<std::string, ValueType> kJoinKeys = {{"origin", ValueType::kString},
                                                    {"destination", ValueType::kString},
                                                    {"user_id", ValueType::kInt64}};

TEST(EntityCsvTest, TypesCellsByJoinKeyAndKeepsHeaderOrder) {
  auto e = ParseEntityCsv("destination,user_id,origin\nSFO,42,LAX\n\"JFK\",-7,\"B,OS\"\n", kJoinKeys);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(e->header, ElementsAre("destination", "user_id", "origin"));
  ASSERT_EQ(e->rows.size(), 2u);
  EXPECT_EQ(e->rows[0].at("user_id"), Value::Int64(42));
  EXPECT_EQ(e->rows[0].at("origin"), Value::String("LAX"));
  EXPECT_EQ(e->rows[1].at("user_id"), Value::Int64(-7));
  EXPECT_EQ(e->rows[1].at("origin"), Value::String("B,OS"));
}

TEST(EntityCsvTest, HeaderOnlyMeansNoRows) {
  auto e = ParseEntityCsv("origin\n", kJoinKeys);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_TRUE(e->rows.empty());
}

TEST(EntityCsvTest, ErrorsNameTheColumnOrLine) {
  auto unknown = ParseEntityCsv("origin,airport\nLAX,SFO\n", kJoinKeys);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("'airport'"));

  auto dup = ParseEntityCsv("origin,origin\nLAX,SFO\n", kJoinKeys);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);

  auto width = ParseEntityCsv("origin,destination\nLAX,SFO\nLAX\n", kJoinKeys);
  EXPECT_EQ(width.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(width.status().message(), HasSubstr("line 3"));

  auto type = ParseEntityCsv("user_id\n1\n\n12x\n", kJoinKeys);
  EXPECT_EQ(type.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(type.status().message(), HasSubstr("line 4"));
  EXPECT_THAT(type.status().message(), HasSubstr("user_id"));

  auto empty_cell = ParseEntityCsv("origin,destination\nLAX,\n", kJoinKeys);
  EXPECT_EQ(empty_cell.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty_cell.status().message(), HasSubstr("line 2"));

  EXPECT_EQ(ParseEntityCsv("", kJoinKeys).status().code(), absl::StatusCode::kInvalidArgument);
}

PushSchema RouteSchema() {
  PushSchema s;
  s.join_keys = {{"origin", ValueType::kString}, {"destination", ValueType::kString}};
  s.timestamp_field = "event_timestamp";
  s.created_timestamp_column = "created";
  s.features = {{"delay", ValueType::kInt64}, {"avg", ValueType::kFloat}, {"late", ValueType::kBool}};
  return s;
}

TEST(PushCsvTest, ColumnsInAnyOrderNullsAndOptionalCreated) {
  auto rows = ParsePushCsv(
      "late,delay,destination,event_timestamp,origin,avg\n"
      "true,12,SFO,2026-01-02T03:04:05Z,LAX,1.5\n"
      ",,JFK,1700000000000000,BOS,\n",
      RouteSchema());
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  const client::WriteRowInput& a = (*rows)[0];
  EXPECT_EQ(a.entity.at("origin"), Value::String("LAX"));
  EXPECT_EQ(a.entity.at("destination"), Value::String("SFO"));
  EXPECT_EQ(a.event_ts_us, 1767323045LL * kSecond);
  EXPECT_EQ(a.created_ts_us, 0);
  EXPECT_THAT(a.values, ElementsAre(Value::Int64(12), Value::Float(1.5f), Value::Bool(true)));
  const client::WriteRowInput& b = (*rows)[1];
  EXPECT_EQ(b.event_ts_us, 1700000000000000);
  EXPECT_THAT(b.values, ElementsAre(Value::Null(ValueType::kInt64), Value::Null(ValueType::kFloat),
                                    Value::Null(ValueType::kBool)));
  auto created = ParsePushCsv(
      "origin,destination,event_timestamp,created,delay,avg,late\nLAX,SFO,5,7,1,2,false\n",
      RouteSchema());
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ((*created)[0].created_ts_us, 7);
}

TEST(PushCsvTest, ErrorsNameTheColumnOrLine) {
  const PushSchema schema = RouteSchema();
  const std::string header = "origin,destination,event_timestamp,delay,avg,late\n";
  struct Case {
    std::string name, text, message;
  };
  const std::vector<Case> cases = {
      {"empty file", "", "empty"},
      {"unknown column", "origin,destination,event_timestamp,delay,avg,late,x\n", "'x'"},
      {"missing feature", "origin,destination,event_timestamp,delay,avg\n", "missing column 'late'"},
      {"missing timestamp", "origin,destination,delay,avg,late\n", "'event_timestamp'"},
      {"missing key", "origin,event_timestamp,delay,avg,late\n", "'destination'"},
      {"duplicate", "origin,origin,destination,event_timestamp,delay,avg,late\n", "twice"},
      {"bad int", header + "LAX,SFO,5,1.5,2,true\n", "line 2"},
      {"float out of range", header + "LAX,SFO,5,1,1e300,true\n", "'avg'"},
      {"bad time", header + "LAX,SFO,yesterday,1,2,true\n", "'event_timestamp'"},
      {"empty time", header + "LAX,SFO,,1,2,true\n", "'event_timestamp'"},
      {"empty key", header + ",SFO,5,1,2,true\n", "'origin'"},
      {"short row", header + "LAX,SFO,5,1,2\n", "expected 6 cells"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto rows = ParsePushCsv(c.text, schema);
    EXPECT_EQ(rows.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(rows.status().message(), HasSubstr(c.message));
  }
  PushSchema lists = schema;
  lists.features.push_back({"embedding", ValueType::kFloatList});
  EXPECT_THAT(ParsePushCsv(header, lists).status().message(), HasSubstr("scalar features only"));
}

// --------------------------------------------------------------------- output

TEST(OnlineRowJsonTest, MatchesTheContractExactly) {
  // 2026-11-20T13:05:00Z = 1795179900 s (date -u -d 2026-11-20T13:05:00Z +%s).
  const int64_t ts = 1795179900 * kSecond;
  std::map<std::string, Value> row = {{"origin", Value::String("LAX")},
                                      {"destination", Value::String("SFO")}};
  std::vector<client::FeatureValue> values(5);
  values[0] = {Value::Int64(12), client::FeatureStatus::kPresent, ts};
  values[1] = {Value::Null(ValueType::kDouble), client::FeatureStatus::kNullValue, ts + 500000};
  values[2] = {Value{}, client::FeatureStatus::kNotFound, 0};
  values[3] = {Value{}, client::FeatureStatus::kOutsideMaxAge, ts};
  values[4] = {Value::String("a \"q\""), client::FeatureStatus::kPresent, ts};
  const std::string json =
      OnlineRowJson({"origin", "destination"}, row,
                    {"route_stats:delay", "route_stats:avg", "origin_stats:n", "old:x", "s:name"},
                    values);
  EXPECT_EQ(json,
            "{\"origin\":\"LAX\",\"destination\":\"SFO\",\"features\":{"
            "\"route_stats:delay\":{\"value\":12,\"status\":\"PRESENT\","
            "\"event_timestamp\":\"2026-11-20T13:05:00Z\"},"
            "\"route_stats:avg\":{\"value\":null,\"status\":\"NULL_VALUE\","
            "\"event_timestamp\":\"2026-11-20T13:05:00.500000Z\"},"
            "\"origin_stats:n\":{\"value\":null,\"status\":\"NOT_FOUND\",\"event_timestamp\":null},"
            "\"old:x\":{\"value\":null,\"status\":\"OUTSIDE_MAX_AGE\","
            "\"event_timestamp\":\"2026-11-20T13:05:00Z\"},"
            "\"s:name\":{\"value\":\"a \\\"q\\\"\",\"status\":\"PRESENT\","
            "\"event_timestamp\":\"2026-11-20T13:05:00Z\"}}}");
}

TEST(OnlineRowJsonTest, TypedJoinKeysAndNoFeatures) {
  std::map<std::string, Value> row = {{"user_id", Value::Int64(7)}};
  EXPECT_EQ(OnlineRowJson({"user_id"}, row, {}, {}), "{\"user_id\":7,\"features\":{}}");
}

quiver::v1::ObjectChange Change(const std::string& kind, const std::string& name,
                                const std::string& action) {
  quiver::v1::ObjectChange c;
  c.set_kind(kind);
  c.set_name(name);
  c.set_action(action);
  return c;
}

TEST(ChangeLinesTest, ApplyAndPlanWording) {
  EXPECT_EQ(ApplyChangeLine(Change("entity", "origin", "created")), "Created entity origin");
  EXPECT_EQ(ApplyChangeLine(Change("feature_view", "route_stats", "updated")),
            "Updated feature view route_stats");
  EXPECT_EQ(ApplyChangeLine(Change("feature_service", "x", "deleted")),
            "Deleted feature service x");
  EXPECT_EQ(ApplyChangeLine(Change("data_source", "flights", "created")),
            "Created data source flights");
  EXPECT_EQ(ApplyChangeLine(Change("entity", "origin", "unchanged")), "");

  EXPECT_EQ(PlanChangeLine(Change("feature_view", "x", "created")), "+ feature view x");
  EXPECT_EQ(PlanChangeLine(Change("feature_view", "y", "updated")), "~ feature view y");
  EXPECT_EQ(PlanChangeLine(Change("entity", "z", "deleted")), "- entity z");
  EXPECT_EQ(PlanChangeLine(Change("entity", "z", "unchanged")), "");

  std::vector<quiver::v1::ObjectChange> changes = {
      Change("entity", "a", "created"), Change("entity", "b", "unchanged"),
      Change("feature_view", "c", "updated"), Change("feature_view", "d", "created")};
  EXPECT_EQ(PlanSummaryLine(changes), "Plan: 2 to create, 1 to update, 0 to delete");
  EXPECT_TRUE(HasChanges(changes));
  EXPECT_FALSE(HasChanges({Change("entity", "b", "unchanged")}));
  EXPECT_FALSE(HasChanges({}));
}

TEST(NodesTableTest, AlignedColumnsSortedByIdThenEpoch) {
  quiver::v1::ListNodesResponse resp;
  resp.set_epoch(7);
  auto* n2 = resp.add_nodes();
  n2->mutable_node()->set_id(2);
  n2->mutable_node()->set_address("127.0.0.1:7002");
  n2->mutable_node()->set_state(quiver::v1::DOWN);
  n2->set_partitions_held(10);
  n2->set_partitions_preferred(3);
  auto* n1 = resp.add_nodes();
  n1->mutable_node()->set_id(1);
  n1->mutable_node()->set_address("10.1.1.1:7001");
  n1->mutable_node()->set_state(quiver::v1::UP);
  n1->mutable_node()->set_last_heartbeat_us(1795179900 * kSecond);
  n1->set_partitions_held(4096);
  n1->set_partitions_preferred(2048);
  auto* n3 = resp.add_nodes();
  n3->mutable_node()->set_id(3);
  n3->mutable_node()->set_address("127.0.0.1:7003");
  n3->mutable_node()->set_state(quiver::v1::JOINING);
  auto* r = resp.mutable_rebalance();
  r->set_moves_active(5);
  r->set_moves_done(7);
  r->set_moves_total(20);
  r->set_rows_streamed(1234);
  r->set_bytes_streamed(56789);
  EXPECT_EQ(NodesTable(resp),
            "ID  ADDRESS         STATE    PARTITIONS  PREFERRED  LAST_HEARTBEAT\n"
            "1   10.1.1.1:7001   UP       4096        2048       2026-11-20T13:05:00Z\n"
            "2   127.0.0.1:7002  DOWN     10          3          -\n"
            "3   127.0.0.1:7003  JOINING  0           0          -\n"
            "epoch=7\n"
            "moves: active=5 done=7/20 rows=1234 bytes=56789\n");
}

TEST(MaterializeLinesTest, ProgressAndSummary) {
  quiver::v1::Job job;
  job.set_rows_written(12345);
  for (const char* state : {"done", "leased", "done", "pending"}) job.add_tasks()->set_state(state);
  EXPECT_EQ(JobProgressLine(job), "tasks 2/4 done, 12345 rows");

  const int64_t jan1 = 978307200 * kSecond, feb1 = 980985600 * kSecond;
  EXPECT_EQ(MaterializeSummaryLine(job, {"a", "b"}, jan1, feb1, 3.21),
            "Materialized 12345 rows for a,b [2001-01-01T00:00:00Z, 2001-02-01T00:00:00Z) in 3.2 s");

  auto* w1 = job.add_windows();
  w1->set_view("route_stats");
  w1->set_start_us(jan1 + 86400 * kSecond);
  w1->set_end_us(feb1);
  auto* w2 = job.add_windows();
  w2->set_view("origin_stats");
  w2->set_start_us(jan1);
  w2->set_end_us(feb1);
  EXPECT_EQ(MaterializeSummaryLine(job, {}, 0, feb1, 10),
            "Materialized 12345 rows for route_stats,origin_stats [2001-01-01T00:00:00Z, "
            "2001-02-01T00:00:00Z) in 10.0 s");
}

}  // namespace
}  // namespace quiver::ctl

namespace quiver::ctl {
namespace {

quiver::v1::NodeBackup NodeWith(uint32_t id,
                                std::vector<std::tuple<uint32_t, uint64_t, uint64_t>> parts) {
  quiver::v1::NodeBackup n;
  n.set_node_id(id);
  auto* v = n.add_views();
  v->set_view("v");
  for (auto [p, rows, sum] : parts) {
    auto* d = v->add_partitions();
    d->set_partition(p);
    d->set_rows(rows);
    d->set_checksum(sum);
  }
  return n;
}

// Partitions 0..3 on replicas {1,2}, {2,3}, {3,1}, {1,2}; node 3 was not
// backed up.
TEST(BackupPlanTest, SummariesCountOneReplicaAndSourcesCoverEveryVersion) {
  quiver::v1::ClusterMap map;
  map.set_num_partitions(4);
  for (auto [a, b] : {std::pair{1u, 2u}, {2u, 3u}, {3u, 1u}, {1u, 2u}}) {
    auto* p = map.add_partitions();
    p->add_node_ids(a);
    p->add_node_ids(b);
  }
  // Partition 0: replicas agree. 1: only node 2. 2: only node 1.
  // 3: replicas differ (node 2 saw one more row).
  std::vector<quiver::v1::NodeBackup> nodes = {
      NodeWith(1, {{0, 10, 100}, {2, 5, 50}, {3, 7, 70}}),
      NodeWith(2, {{0, 10, 100}, {1, 4, 40}, {3, 8, 81}})};
  auto plan = PlanBackup(map, nodes);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->first.size(), 1u);
  const auto& s = plan->first[0];
  EXPECT_EQ(s.view(), "v");
  EXPECT_EQ(s.rows(), 10u + 4 + 5 + 7);  // partition 3 counted from node 1, its first replica
  EXPECT_EQ(s.checksum(), 100u + 40 + 50 + 70);
  EXPECT_EQ(s.divergent_partitions(), 1u);
  // Partition 0 from node 1 only; 3 from both.
  EXPECT_EQ(plan->second.at("v").at(1), (std::vector<uint32_t>{0, 2, 3}));
  EXPECT_EQ(plan->second.at("v").at(2), (std::vector<uint32_t>{1, 3}));

  // Without node 1, partition 2 has no backed-up replica.
  auto missing = PlanBackup(map, {nodes[1]});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(missing.status().message()).find("partition 2"), std::string::npos);
  EXPECT_EQ(PlanBackup(quiver::v1::ClusterMap(), nodes).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BackupPlanTest, RangesAndIds) {
  EXPECT_EQ(PartitionRanges({1, 2, 3, 7, 9, 10}),
            (std::vector<std::pair<uint32_t, uint32_t>>{{1, 4}, {7, 8}, {9, 11}}));
  EXPECT_TRUE(PartitionRanges({}).empty());
  EXPECT_EQ(BackupId(1795267200000000), "20261121T132000Z");
}

}  // namespace
}  // namespace quiver::ctl
