// FeastRedisReader: online reads from Feast's Redis layout (feast_layout.h),
// done the way Feast's Go feature server does them (redisonlinestore.go
// OnlineRead): one pipelined HMGET per entity key asking for every requested
// feature field of every view plus one "_ts:<view>" field per view, then every
// returned feast.types.Value decoded (proto.Unmarshal there, the generated
// protobuf parser here) into a quiver::Value.
//
// Thread-safety: not thread-safe; use one reader per thread (each owns its
// own hiredis connection). Read blocks on the network.
#ifndef QUIVER_BENCH_FEAST_REDIS_READER_H_
#define QUIVER_BENCH_FEAST_REDIS_READER_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "quiver/keys/value.h"

struct redisContext;

namespace quiver::bench::feast {

struct FeastFeatureRef {
  std::string view;
  std::string feature;
  ValueType type = ValueType::kInvalid;  // the declared (Quiver) type
};

struct FeastReadResult {
  size_t rows = 0;
  size_t features = 0;
  size_t views = 0;
  // rows x features, row-major: entity order, then feature order as given to
  // Connect. A missing hash field or a null value is Value::Null(declared type).
  std::vector<Value> values;
  // rows x views, row-major (views as FeastRedisReader::views()): the event
  // time stored in "_ts:<view>" (unit: µs since the epoch; whole seconds, as
  // Feast writes them), 0 when the field is missing.
  std::vector<int64_t> event_ts_us;

  const Value& at(size_t row, size_t feature) const { return values[row * features + feature]; }
  int64_t event_ts(size_t row, size_t view) const { return event_ts_us[row * views + view]; }
};

class FeastRedisReader {
 public:
  FeastRedisReader();
  ~FeastRedisReader();
  FeastRedisReader(const FeastRedisReader&) = delete;
  FeastRedisReader& operator=(const FeastRedisReader&) = delete;

  // Connects to Redis at host:port (TCP, no delay) and prepares the HMGET
  // field list for `features` in their order. `join_key` names the single
  // INT64 join key of the entity. `timeout_ms` bounds connect and every reply.
  // Errors: kInvalidArgument (no features, an invalid type), kUnavailable
  // (cannot connect).
  absl::Status Connect(const std::string& host, int port, const std::string& project,
                       std::vector<FeastFeatureRef> features,
                       const std::string& join_key = "entity_id", int timeout_ms = 5000);

  // The distinct views of the features, in order of first appearance.
  const std::vector<std::string>& views() const { return views_; }

  // Reads the features of `entity_ids` into `out` (resized; its buffers are
  // reused from call to call, so pass the same result object to avoid heap
  // churn). Errors: kFailedPrecondition (not connected), kUnavailable
  // (connection lost or timed out: reconnect with Connect), kDataLoss (a
  // stored value that does not parse or whose type differs from the declared
  // one).
  absl::Status Read(std::span<const int64_t> entity_ids, FeastReadResult* out);

 private:
  struct Decoder;  // reusable protobuf messages
  absl::Status DecodeReply(const void* reply, size_t row, FeastReadResult* out);

  redisContext* ctx_ = nullptr;
  std::unique_ptr<Decoder> decoder_;
  std::string project_;
  std::string join_key_;
  std::vector<FeastFeatureRef> features_;
  std::vector<std::string> views_;
  std::vector<size_t> view_of_feature_;
  // HMGET argv: "HMGET", key, feature fields..., "_ts:<view>" fields...
  std::vector<std::string> fields_;
  std::vector<const char*> argv_;
  std::vector<size_t> argv_len_;
  std::string key_;
};

}  // namespace quiver::bench::feast

#endif  // QUIVER_BENCH_FEAST_REDIS_READER_H_
