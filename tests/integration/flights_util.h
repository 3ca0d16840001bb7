// Shared checks for the flights integration tests: the expected online row of
// every entity key computed by DuckDB straight from the Parquet offline store
// (latest row per key in the window, ties by created timestamp), compared
// with what quiver::Client returns.
#ifndef QUIVER_TESTS_INTEGRATION_FLIGHTS_UTIL_H_
#define QUIVER_TESTS_INTEGRATION_FLIGHTS_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "harness.h"
#include "quiver/client/client.h"

namespace quiver::testing {

// Before all of the flights data: windows from here cover everything.
inline constexpr int64_t kFlightsStartUs = 946684800000000;  // 2000-01-01T00:00:00Z

struct FlightsView {
  std::string name;
  std::vector<std::string> join_keys;
  std::vector<std::pair<std::string, ValueType>> features;
  int64_t ttl_s;
  std::string file;  // under examples/flights/data
};

// The two views of examples/flights/feature_repo.yaml.
const std::vector<FlightsView>& FlightsViews();

// The flights data folder; fails the test if prepare.sh has not run.
std::string FlightsDataDir();

struct ViewCheck {
  int64_t keys = 0;  // entity keys compared
  int64_t present = 0;
  int64_t outside_max_age = 0;
  int64_t null_values = 0;
  int64_t mismatches = 0;
  int64_t failed_lookups = 0;  // calls that returned an error
  std::string first_mismatch;
};

// Looks up every entity key of `view` in [start_us, end_us) through `client`
// (batches of `batch` rows, `deadline_ms` each) and compares value, status and
// event timestamp with DuckDB's answer. TTL is judged at the lookup time;
// keys within 120 s of expiring may be either status.
ViewCheck CheckViewAgainstDuckDb(client::Client& client, const FlightsView& view,
                                 int64_t start_us, int64_t end_us, int batch = 500,
                                 int deadline_ms = 2000);

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_INTEGRATION_FLIGHTS_UTIL_H_
