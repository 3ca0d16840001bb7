// End to end on real data: a 3-node cluster with replication factor 2 serves
// the flights feature repository; every entity's online row must equal
// DuckDB's "latest row per entity key in the window" over the Parquet files.
#include <gtest/gtest.h>

#include <sstream>

#include "absl/strings/str_cat.h"
#include "flights_util.h"
#include "harness.h"
#include "quiver/client/client.h"

namespace quiver::testing {
namespace {

TEST(FlightsEndToEnd, EveryEntityMatchesDuckDbLatestRow) {
  FlightsDataDir();
  auto cluster = LocalCluster::Up(3, 2);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto apply = (*cluster)->Ctl({"apply", SourceDir() + "/examples/flights"});
  ASSERT_EQ(apply.exit_code, 0) << apply.out << apply.err;
  EXPECT_NE(apply.out.find("Created feature view route_stats"), std::string::npos) << apply.out;

  const int64_t end_us = NowMicros();
  const std::string end = FormatTimestamp(end_us - end_us % 1000000);
  auto mat = (*cluster)->Ctl({"materialize", "2000-01-01T00:00:00Z", end});
  ASSERT_EQ(mat.exit_code, 0) << mat.out << mat.err;

  auto client = (*cluster)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  for (const auto& view : FlightsViews()) {
    const ViewCheck c = CheckViewAgainstDuckDb(**client, view, kFlightsStartUs, end_us - end_us % 1000000);
    SCOPED_TRACE(view.name);
    EXPECT_EQ(c.failed_lookups, 0) << c.first_mismatch;
    EXPECT_EQ(c.mismatches, 0) << c.first_mismatch;
    EXPECT_GT(c.present, 0);
    std::cout << view.name << ": " << c.keys << " entity keys checked, " << c.present
              << " present, " << c.null_values << " null, " << c.outside_max_age
              << " outside max age\n";
  }
  EXPECT_EQ(CheckViewAgainstDuckDb(**client, FlightsViews()[0], kFlightsStartUs, end_us).keys, 229);
  EXPECT_EQ(CheckViewAgainstDuckDb(**client, FlightsViews()[1], kFlightsStartUs, end_us).keys, 3399);

  // Running again, or an older window afterwards, changes nothing (LWW).
  auto again = (*cluster)->Ctl({"materialize", "2000-01-01T00:00:00Z",
                                FormatTimestamp(end_us - 30 * 86400000000LL)});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  for (const auto& view : FlightsViews()) {
    const ViewCheck c = CheckViewAgainstDuckDb(**client, view, kFlightsStartUs, end_us - end_us % 1000000);
    EXPECT_EQ(c.mismatches + c.failed_lookups, 0) << view.name << ": " << c.first_mismatch;
  }

  // Every process serves Prometheus /metrics, with per-RPC counts of this traffic.
  int served_gets = 0;
  for (const auto& addr : (*cluster)->AllListeningAddresses()) {
    auto metrics = quiver::testing::Run({"curl", "-sf", "http://" + addr + "/metrics"}, 30);
    if (metrics.exit_code != 0) continue;  // a gRPC port
    EXPECT_NE(metrics.out.find("quiver_rpc_requests_total"), std::string::npos) << addr;
    // The C++ client reads through the lean lookup protocol (LeanGet).
    if (metrics.out.find("method=\"LeanGet\"") != std::string::npos) ++served_gets;
  }
  EXPECT_EQ(served_gets, 3);  // every node answered lookups

  // get-online prints one JSON object per CSV row, in input order.
  auto get = (*cluster)->Ctl({"get-online", "--feature-service", "delay_model_v1", "--entities",
                              SourceDir() + "/examples/flights/entities.csv"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  std::istringstream lines(get.out);
  std::vector<std::string> rows;
  for (std::string l; std::getline(lines, l);) rows.push_back(l);
  ASSERT_EQ(rows.size(), 6u) << get.out;
  EXPECT_EQ(rows[0].rfind("{\"origin\":\"LAX\",\"destination\":\"SFO\",\"features\":{", 0), 0u)
      << rows[0];
  EXPECT_NE(rows[0].find("\"route_stats:delay\":{\"value\":"), std::string::npos) << rows[0];
  EXPECT_NE(rows[0].find("\"status\":\"PRESENT\",\"event_timestamp\":\""), std::string::npos);
  EXPECT_EQ(rows[5].rfind("{\"origin\":\"XXX\",\"destination\":\"YYY\"", 0), 0u) << rows[5];
  EXPECT_NE(rows[5].find("{\"value\":null,\"status\":\"NOT_FOUND\",\"event_timestamp\":null}"),
            std::string::npos)
      << rows[5];
}

TEST(FlightsEndToEnd, WindowsInAnyOrderGiveTheSameStore) {
  FlightsDataDir();
  auto cluster = LocalCluster::Up(3, 2);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_EQ((*cluster)->Ctl({"apply", SourceDir() + "/examples/flights"}).exit_code, 0);
  const int64_t end_us = NowMicros() / 1000000 * 1000000;
  const int64_t day = 86400000000LL;
  // Newest window first, then older ones: older rows must never win.
  const std::vector<std::pair<int64_t, int64_t>> windows = {
      {end_us - 20 * day, end_us}, {end_us - 90 * day, end_us - 20 * day},
      {kFlightsStartUs, end_us - 90 * day}};
  for (const auto& [s, e] : windows) {
    auto r = (*cluster)->Ctl({"materialize", FormatTimestamp(s), FormatTimestamp(e)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  auto client = (*cluster)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  for (const auto& view : FlightsViews()) {
    const ViewCheck c = CheckViewAgainstDuckDb(**client, view, kFlightsStartUs, end_us);
    EXPECT_EQ(c.mismatches + c.failed_lookups, 0) << view.name << ": " << c.first_mismatch;
    EXPECT_GT(c.keys, 200);
  }
}

}  // namespace
}  // namespace quiver::testing
