// Materialization planning, leasing and completion against Parquet files
// written by DuckDB; expected row groups come from DuckDB's parquet_metadata.
#include <map>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "quiver/coordinator/coordinator.h"
#include "quiver/storage/offline_store.h"
#include "unit/coordinator/coordinator_test_util.h"
#include "common/temp_dir.h"

namespace quiver::coordinator {
namespace {

using testing::ManualClock;
using testing::MustOpen;
using testing::MustRegister;
using testing::TestOptions;

constexpr int64_t kBaseUs = 978'307'200'000'000;  // 2001-01-01T00:00:00Z
constexpr int64_t kMinuteUs = 60'000'000;
constexpr int kRows = 40000;  // row i has date = base + i minutes

class MaterializationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto offline = storage::OfflineStore::Open(1);
    ASSERT_TRUE(offline.ok()) << offline.status();
    offline_ = std::move(*offline);
    file_ = dir_.File("flights.parquet");
    auto copy = offline_->QueryScalar(absl::StrCat(
        "COPY (SELECT TIMESTAMP '2001-01-01' + to_minutes(i) AS date, 'A' || (i % 10) AS origin, "
        "i AS delay FROM range(", kRows, ") t(i) ORDER BY i) TO '", file_,
        "' (FORMAT PARQUET, ROW_GROUP_SIZE 5000)"));
    ASSERT_TRUE(copy.ok()) << copy.status();
    options_ = TestOptions(dir_.File("state"), clock_);
    options_.max_task_rows = 1;  // one task per row group unless a test says otherwise
    options_.task_split = TaskSplit::kRowRanges;
    clock_.Advance(kRows * kMinuteUs);  // "now" is after the data
  }

  void Open() { c_ = MustOpen(options_); }

  void ApplyRegistry(const std::string& delay_type = "INT64",
                     const std::string& path = "") {
    v1::ApplyRegistryRequest req;
    auto* r = req.mutable_registry();
    r->set_project("t");
    auto* e = r->add_entities();
    e->set_name("origin");
    e->set_join_key("origin");
    e->set_value_type(v1::STRING);
    auto* s = r->add_sources();
    s->set_name("flights");
    s->set_path(path.empty() ? file_ : path);
    s->set_timestamp_field("date");
    for (const char* name : {"v", "offline_v"}) {
      auto* v = r->add_feature_views();
      v->set_name(name);
      v->add_entities("origin");
      v->set_source("flights");
      v->set_online(std::string(name) == "v");
      v->set_ttl_seconds(86400);
      auto* f = v->add_features();
      f->set_name("delay");
      v1::ValueType t;
      ASSERT_TRUE(v1::ValueType_Parse(delay_type, &t));
      f->set_type(t);
    }
    auto resp = c_->ApplyRegistry(req);
    ASSERT_TRUE(resp.ok()) << resp.status();
  }

  // DuckDB's own count of the row groups whose date statistics meet [start, end).
  int64_t ExpectedGroups(int64_t start_us, int64_t end_us, const std::string& what = "count(*)") {
    auto text = offline_->QueryScalar(absl::StrCat(
        "SELECT ", what, " FROM parquet_metadata('", file_, "') WHERE path_in_schema = 'date' ",
        "AND epoch_us(stats_max_value::TIMESTAMP) >= ", start_us,
        " AND epoch_us(stats_min_value::TIMESTAMP) < ", end_us));
    EXPECT_TRUE(text.ok()) << text.status();
    int64_t n = -1;
    EXPECT_TRUE(text.ok() && absl::SimpleAtoi(*text, &n)) << (text.ok() ? *text : "");
    return n;
  }

  absl::StatusOr<v1::Job> Start(int64_t start_us, int64_t end_us, bool incremental = false,
                                std::vector<std::string> views = {}) {
    v1::MaterializeRequest req;
    req.set_start_us(start_us);
    req.set_end_us(end_us);
    req.set_incremental(incremental);
    for (auto& v : views) req.add_views(v);
    return c_->StartMaterialization(req);
  }

  v1::MaterializationTask Lease(uint32_t node) {
    v1::LeaseTaskRequest req;
    req.set_node_id(node);
    auto resp = c_->LeaseTask(req);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? resp->task() : v1::MaterializationTask();
  }
  bool HasLease(uint32_t node) {
    v1::LeaseTaskRequest req;
    req.set_node_id(node);
    return c_->LeaseTask(req)->has_task();
  }

  absl::Status Complete(uint32_t node, const v1::MaterializationTask& t, bool ok,
                        bool retryable = false, uint64_t rows = 0) {
    v1::CompleteTaskRequest req;
    req.set_node_id(node);
    req.set_job_id(t.job_id());
    req.set_task_id(t.task_id());
    req.set_attempt(t.attempt());
    req.set_ok(ok);
    req.set_retryable(retryable);
    req.set_rows_written(rows);
    if (!ok) req.set_error("quorum missed");
    return c_->CompleteTask(req);
  }

  std::vector<std::pair<int64_t, int64_t>> Intervals(const std::string& view) {
    std::vector<std::pair<int64_t, int64_t>> out;
    const v1::CoordinatorState state = c_->State();
    for (const auto& vi : state.intervals()) {
      if (vi.view() != view) continue;
      for (const auto& i : vi.intervals()) out.emplace_back(i.start_us(), i.end_us());
    }
    return out;
  }

  quiver::testing::TempDir dir_;
  ManualClock clock_;
  std::unique_ptr<storage::OfflineStore> offline_;
  std::string file_;
  CoordinatorOptions options_;
  std::unique_ptr<Coordinator> c_;
};

TEST_F(MaterializationTest, PlansOneTaskPerRowGroupInTheWindow) {
  Open();
  ApplyRegistry();
  const int64_t start = kBaseUs + 12000 * kMinuteUs, end = kBaseUs + 23000 * kMinuteUs;
  auto job = Start(start, end);
  ASSERT_TRUE(job.ok()) << job.status();
  const int64_t expected = ExpectedGroups(start, end);
  ASSERT_GT(expected, 1);
  ASSERT_LT(expected, ExpectedGroups(0, INT64_MAX));  // some row groups were pruned
  EXPECT_EQ(job->state(), v1::JOB_RUNNING);
  ASSERT_EQ(job->tasks_size(), expected);
  ASSERT_EQ(job->windows_size(), 1);  // only the online view
  EXPECT_EQ(job->windows(0).view(), "v");
  // The planned rows are exactly those of the kept row groups.
  const auto state = c_->State();
  uint64_t rows = 0;
  for (const auto& t : state.pending_tasks()) {
    EXPECT_EQ(t.file(), file_);
    EXPECT_EQ(t.start_us(), start);
    EXPECT_EQ(t.end_us(), end);
    EXPECT_EQ(t.registry_version(), 1u);
    rows += t.row_end() - t.row_begin();
  }
  EXPECT_EQ(static_cast<int64_t>(rows), ExpectedGroups(start, end, "sum(row_group_num_rows)"));
  EXPECT_EQ(c_->Stats().tasks_pending, expected);
}

TEST_F(MaterializationTest, AdjacentRowGroupsMergeUpToTheRowLimit) {
  options_.max_task_rows = 1'000'000;
  Open();
  ApplyRegistry();
  auto job = Start(kBaseUs, kBaseUs + kRows * kMinuteUs);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->tasks_size(), 1);
  const auto t = c_->State().pending_tasks(0);
  EXPECT_EQ(t.row_begin(), 0u);
  EXPECT_EQ(t.row_end(), static_cast<uint64_t>(kRows));
}

TEST_F(MaterializationTest, EntityHashSplitGivesEachEntityToExactlyOneTask) {
  options_.max_task_rows = 15000;  // 40,000 rows -> 3 buckets over the whole file
  options_.task_split = TaskSplit::kEntityHash;
  Open();
  ApplyRegistry();
  auto job = Start(kBaseUs, kBaseUs + kRows * kMinuteUs);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->tasks_size(), 3);
  // Run each task's query: the buckets partition the entities, and together
  // they give DuckDB's latest row of every origin, each exactly once.
  std::map<std::string, int64_t> latest;
  for (int i = 0; i < 3; ++i) {
    const auto t = c_->State().pending_tasks(i);
    EXPECT_EQ(t.row_begin(), 0u);
    EXPECT_EQ(t.row_end(), static_cast<uint64_t>(kRows));
    EXPECT_EQ(t.buckets(), 3u);
    storage::LatestQuery q;
    q.file = t.file();
    q.row_begin = t.row_begin();
    q.row_end = t.row_end();
    q.start_us = t.start_us();
    q.end_us = t.end_us();
    q.join_keys = {{"origin", ValueType::kString}};
    q.timestamp_field = "date";
    q.features = {{"delay", ValueType::kInt64}};
    q.bucket = t.bucket();
    q.buckets = t.buckets();
    ASSERT_TRUE(offline_
                    ->ScanLatest(q, 7,
                                 [&](std::vector<storage::OfflineRow>& rows) {
                                   for (const auto& r : rows) {
                                     const auto& origin =
                                         std::get<std::string>(r.join_key_values[0].data);
                                     EXPECT_TRUE(latest.emplace(origin, std::get<int64_t>(r.values[0].data)).second)
                                         << origin << " in two buckets";
                                   }
                                   return absl::OkStatus();
                                 })
                    .ok());
  }
  ASSERT_EQ(latest.size(), 10u);  // origins A0..A9
  for (const auto& [origin, delay] : latest) {
    auto want = offline_->QueryScalar(absl::StrCat("SELECT max(i) FROM range(", kRows,
                                                   ") t(i) WHERE 'A' || (i % 10) = '", origin, "'"));
    ASSERT_TRUE(want.ok());
    EXPECT_EQ(std::to_string(delay), *want) << origin;
  }
}

TEST_F(MaterializationTest, AWindowWithoutDataSucceedsAtOnce) {
  Open();
  ApplyRegistry();
  const int64_t start = kBaseUs + 2 * kRows * kMinuteUs, end = start + kMinuteUs;
  auto job = Start(start, end);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->tasks_size(), 0);
  EXPECT_EQ(job->state(), v1::JOB_SUCCEEDED);
  EXPECT_THAT(Intervals("v"), ::testing::ElementsAre(std::make_pair(start, end)));
}

TEST_F(MaterializationTest, BadRequestsStoreNothing) {
  Open();
  EXPECT_EQ(Start(0, 1).status().code(), absl::StatusCode::kFailedPrecondition);  // no registry
  ApplyRegistry("INT32");  // the file holds BIGINT
  EXPECT_EQ(Start(0, kBaseUs * 2).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Start(5, 5).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Start(0, 5, false, {"nope"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Start(0, 5, false, {"offline_v"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  ApplyRegistry("INT64", dir_.File("missing/*.parquet"));
  EXPECT_EQ(Start(0, kBaseUs * 2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(c_->State().jobs_size(), 0);
  EXPECT_EQ(c_->State().pending_tasks_size(), 0);
  EXPECT_EQ(c_->GetJob(1).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MaterializationTest, LeasesExpireAndStaleCompletionsAreIgnored) {
  Open();
  ApplyRegistry();
  MustRegister(*c_, "a:1");
  MustRegister(*c_, "b:1");
  MustRegister(*c_, "c:1");
  // Node 3 goes DOWN.
  clock_.Advance(3'000'000);
  for (uint32_t id : {1u, 2u}) {
    v1::HeartbeatRequest hb;
    hb.set_node_id(id);
    ASSERT_TRUE(c_->Heartbeat(hb).ok());
  }
  ASSERT_TRUE(c_->Tick().ok());
  const int64_t start = kBaseUs, end = kBaseUs + 12000 * kMinuteUs;
  auto job = Start(start, end);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->tasks_size(), ExpectedGroups(start, end));
  ASSERT_GE(job->tasks_size(), 2);

  EXPECT_FALSE(HasLease(3));  // DOWN
  EXPECT_FALSE(HasLease(99));  // unknown
  const v1::MaterializationTask t0 = Lease(1);
  EXPECT_EQ(t0.task_id(), 0u);
  EXPECT_EQ(t0.attempt(), 1u);
  EXPECT_EQ(t0.lease_expires_us(), clock_.Now() + options_.lease_us);
  const v1::MaterializationTask t1 = Lease(2);
  EXPECT_EQ(t1.task_id(), 1u);

  // Node 1's lease expires: node 2 gets task 0 again.
  clock_.Advance(options_.lease_us + 1);
  const v1::MaterializationTask again = Lease(2);
  EXPECT_EQ(again.task_id(), 0u);
  EXPECT_EQ(again.attempt(), 2u);
  // Node 1 finishes late: ignored.
  ASSERT_TRUE(Complete(1, t0, true, false, 5).ok());
  EXPECT_EQ(c_->GetJob(job->id())->tasks(0).state(), "leased");
  EXPECT_EQ(c_->GetJob(job->id())->tasks(0).node_id(), 2u);

  // Finish everything (t1's lease also expired: lease it afresh).
  uint64_t rows = 0;
  ASSERT_TRUE(Complete(2, again, true, false, 7).ok());
  rows += 7;
  for (v1::MaterializationTask t = Lease(1); t.job_id() != 0; t = Lease(1)) {
    ASSERT_TRUE(Complete(1, t, true, false, 3).ok());
    rows += 3;
  }
  auto done = c_->GetJob(job->id());
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), v1::JOB_SUCCEEDED);
  EXPECT_EQ(done->rows_written(), rows);
  EXPECT_EQ(done->finished_us(), clock_.Now());
  EXPECT_THAT(Intervals("v"), ::testing::ElementsAre(std::make_pair(start, end)));
  EXPECT_EQ(c_->Stats().tasks_pending, 0);
  EXPECT_EQ(Complete(1, t1, true).code(), absl::OkStatus().code());  // late: ignored
  v1::CompleteTaskRequest unknown;
  unknown.set_job_id(42);
  EXPECT_EQ(c_->CompleteTask(unknown).code(), absl::StatusCode::kNotFound);
}

TEST_F(MaterializationTest, HeartbeatsRenewTheLeasesOfRunningTasks) {
  Open();
  ApplyRegistry();
  MustRegister(*c_, "a:1");
  MustRegister(*c_, "b:1");
  auto job = Start(kBaseUs, kBaseUs + kMinuteUs);  // one row group: one task
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->tasks_size(), 1);
  const v1::MaterializationTask t = Lease(1);
  ASSERT_EQ(t.job_id(), job->id());
  auto beat = [&](uint32_t node, const v1::MaterializationTask* running) {
    v1::HeartbeatRequest hb;
    hb.set_node_id(node);
    if (running != nullptr) {
      v1::RunningTask* r = hb.add_running_tasks();
      r->set_job_id(running->job_id());
      r->set_task_id(running->task_id());
      r->set_attempt(running->attempt());
    }
    ASSERT_TRUE(c_->Heartbeat(hb).ok());
  };
  // Node 1 runs its task for three lease periods, heartbeating every
  // quarter of one; node 2 asks for work all along and gets none.
  for (int i = 0; i < 12; ++i) {
    clock_.Advance(options_.lease_us / 4);
    beat(1, &t);
    beat(2, nullptr);
    ASSERT_FALSE(HasLease(2)) << "after " << i + 1 << " quarter leases";
  }
  EXPECT_EQ(c_->GetJob(job->id())->tasks(0).attempts(), 1u);
  // A report of another attempt, or by another node, renews nothing: once
  // node 1 stops heartbeating, node 2 gets the task within one lease.
  v1::MaterializationTask other = t;
  other.set_attempt(t.attempt() + 1);
  clock_.Advance(options_.lease_us / 2);
  beat(1, &other);
  beat(2, &t);
  clock_.Advance(options_.lease_us / 2 + 1);
  const v1::MaterializationTask again = Lease(2);
  EXPECT_EQ(again.task_id(), t.task_id());
  EXPECT_EQ(again.attempt(), 2u);
  ASSERT_TRUE(Complete(2, again, true, false, 9).ok());
  EXPECT_EQ(c_->GetJob(job->id())->state(), v1::JOB_SUCCEEDED);
  // A heartbeat naming a finished task is harmless.
  beat(1, &t);
}

TEST_F(MaterializationTest, RetryableFailuresRetryUpToTheLimit) {
  options_.max_task_attempts = 2;
  Open();
  ApplyRegistry();
  MustRegister(*c_, "a:1");
  auto job = Start(kBaseUs, kBaseUs + kMinuteUs);  // one row group
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_EQ(job->tasks_size(), 1);
  v1::MaterializationTask t = Lease(1);
  ASSERT_TRUE(Complete(1, t, false, /*retryable=*/true).ok());
  EXPECT_EQ(c_->GetJob(job->id())->tasks(0).state(), "pending");
  t = Lease(1);
  EXPECT_EQ(t.attempt(), 2u);
  ASSERT_TRUE(Complete(1, t, false, /*retryable=*/true).ok());
  auto failed = c_->GetJob(job->id());
  EXPECT_EQ(failed->state(), v1::JOB_FAILED);
  EXPECT_THAT(failed->error(), ::testing::HasSubstr("quorum missed"));
  EXPECT_FALSE(HasLease(1));
  EXPECT_TRUE(Intervals("v").empty());
}

TEST_F(MaterializationTest, ExpiredLeasesCountAsAttempts) {
  options_.max_task_attempts = 2;
  Open();
  ApplyRegistry();
  MustRegister(*c_, "a:1");
  auto job = Start(kBaseUs, kBaseUs + kMinuteUs);
  ASSERT_TRUE(job.ok());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(Lease(1).job_id() != 0);
    clock_.Advance(options_.lease_us + 1);
    v1::HeartbeatRequest hb;
    hb.set_node_id(1);
    ASSERT_TRUE(c_->Heartbeat(hb).ok());
  }
  EXPECT_FALSE(HasLease(1));
  EXPECT_EQ(c_->GetJob(job->id())->state(), v1::JOB_FAILED);
}

TEST_F(MaterializationTest, NonRetryableFailureFailsTheJob) {
  Open();
  ApplyRegistry();
  MustRegister(*c_, "a:1");
  auto job = Start(kBaseUs, kBaseUs + kMinuteUs);
  ASSERT_TRUE(job.ok());
  ASSERT_TRUE(Complete(1, Lease(1), false, /*retryable=*/false).ok());
  EXPECT_EQ(c_->GetJob(job->id())->state(), v1::JOB_FAILED);
}

TEST_F(MaterializationTest, IncrementalStartsWhereTheLastIntervalEnds) {
  Open();
  ApplyRegistry();
  MustRegister(*c_, "a:1");
  auto run = [&](absl::StatusOr<v1::Job> job) {
    EXPECT_TRUE(job.ok()) << job.status();
    for (v1::MaterializationTask t = Lease(1); t.job_id() != 0; t = Lease(1)) {
      EXPECT_TRUE(Complete(1, t, true).ok());
    }
    return job.ok() ? *c_->GetJob(job->id()) : v1::Job();
  };
  // No interval yet: the window starts at now - ttl.
  const int64_t t1 = clock_.Now() - 3600'000'000;
  v1::Job first = run(Start(0, t1, /*incremental=*/true));
  ASSERT_EQ(first.windows_size(), 1);
  EXPECT_EQ(first.windows(0).start_us(), clock_.Now() - 86400'000'000);
  EXPECT_EQ(first.state(), v1::JOB_SUCCEEDED);
  const int64_t t2 = clock_.Now();
  v1::Job second = run(Start(0, t2, true));
  EXPECT_EQ(second.windows(0).start_us(), t1);
  // Materialized to t2 already: nothing to do.
  v1::Job third = run(Start(0, t2, true));
  EXPECT_EQ(third.windows_size(), 0);
  EXPECT_EQ(third.state(), v1::JOB_SUCCEEDED);
  // An earlier backfill merges with the existing interval.
  run(Start(kBaseUs, first.windows(0).start_us()));
  EXPECT_THAT(Intervals("v"), ::testing::ElementsAre(std::make_pair(kBaseUs, t2)));
}

// Applies the current registry after `change` edits it.
template <typename Change>
void Reapply(Coordinator& c, Change change) {
  v1::ApplyRegistryRequest req;
  *req.mutable_registry() = c.State().registry();
  change(req.mutable_registry());
  auto resp = c.ApplyRegistry(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
}

TEST_F(MaterializationTest, ReKeyingAViewBumpsItsSchemaAndDropsItsIntervals) {
  Open();
  ApplyRegistry();
  MustRegister(*c_, "a:1");
  auto job = Start(kBaseUs, clock_.Now());
  ASSERT_TRUE(job.ok()) << job.status();
  for (v1::MaterializationTask t = Lease(1); t.job_id() != 0; t = Lease(1)) {
    ASSERT_TRUE(Complete(1, t, true).ok());
  }
  ASSERT_EQ(Intervals("v").size(), 1u);
  // Same features, another join key: every stored entity key is now wrong.
  Reapply(*c_, [](v1::Registry* r) { r->mutable_entities(0)->set_join_key("airport"); });
  EXPECT_EQ(c_->State().registry().feature_views(0).schema_version(), 2u);
  EXPECT_TRUE(Intervals("v").empty());
  // A tags-only change keeps both.
  Reapply(*c_, [](v1::Registry* r) {
    (*r->mutable_feature_views(0)->mutable_tags())["team"] = "ops";
  });
  EXPECT_EQ(c_->State().registry().feature_views(0).schema_version(), 2u);
}

TEST_F(MaterializationTest, AJobThatOutlivesASchemaChangeRecordsNoInterval) {
  Open();
  ApplyRegistry();
  MustRegister(*c_, "a:1");
  auto job = Start(kBaseUs, clock_.Now());
  ASSERT_TRUE(job.ok()) << job.status();
  v1::MaterializationTask first = Lease(1);
  ASSERT_NE(first.job_id(), 0u);
  ASSERT_TRUE(Complete(1, first, true).ok());
  Reapply(*c_, [](v1::Registry* r) {
    r->mutable_feature_views(0)->mutable_features(0)->set_name("delay_minutes");
  });
  for (v1::MaterializationTask t = Lease(1); t.job_id() != 0; t = Lease(1)) {
    ASSERT_TRUE(Complete(1, t, true).ok());
  }
  EXPECT_EQ(c_->GetJob(job->id())->state(), v1::JOB_SUCCEEDED);
  EXPECT_TRUE(Intervals("v").empty());  // its rows were written under schema 1
}

TEST_F(MaterializationTest, JobsSurviveARestart) {
  Open();
  ApplyRegistry();
  MustRegister(*c_, "a:1");
  auto job = Start(kBaseUs, kBaseUs + 12000 * kMinuteUs);
  ASSERT_TRUE(job.ok());
  const v1::MaterializationTask leased = Lease(1);
  c_.reset();
  Open();
  auto reloaded = c_->GetJob(job->id());
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded->state(), v1::JOB_RUNNING);
  EXPECT_EQ(reloaded->tasks(0).state(), "leased");
  // The node's completion of its lease is accepted after the restart.
  ASSERT_TRUE(Complete(1, leased, true, false, 9).ok());
  EXPECT_EQ(c_->GetJob(job->id())->tasks(0).state(), "done");
  EXPECT_EQ(Lease(1).task_id(), 1u);
}

TEST_F(MaterializationTest, OnlyTheLastFinishedJobsAreKept) {
  options_.max_finished_jobs = 3;
  Open();
  ApplyRegistry();
  const int64_t empty = kBaseUs + 2 * kRows * kMinuteUs;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Start(empty, empty + 1).ok());
  EXPECT_EQ(c_->GetJob(2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(c_->GetJob(3).ok());
  EXPECT_TRUE(c_->GetJob(5).ok());
}

}  // namespace
}  // namespace quiver::coordinator
