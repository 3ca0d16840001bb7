#include "quiver/bench/feast_redis/loader.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quiver/bench/feast_redis/feast_layout.h"
#include "quiver/bench/gen/dataset.h"
#include "quiver/bench/gen/duck.h"

namespace quiver::bench::feast {
namespace {

struct RedisDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using RedisPtr = std::unique_ptr<redisContext, RedisDeleter>;

absl::StatusOr<RedisPtr> ConnectRedis(const std::string& host, int port, int timeout_ms) {
  const timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  RedisPtr ctx(redisConnectWithTimeout(host.c_str(), port, tv));
  if (ctx == nullptr || ctx->err != 0 || redisSetTimeout(ctx.get(), tv) != REDIS_OK) {
    return absl::UnavailableError(absl::StrCat("cannot connect to redis at ", host, ":", port, ": ",
                                               ctx ? ctx->errstr : "out of memory"));
  }
  return ctx;
}

// Reads `n` pipelined HSET replies. Errors: kUnavailable, kInternal.
absl::Status DrainReplies(redisContext* ctx, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    void* r = nullptr;
    if (redisGetReply(ctx, &r) != REDIS_OK || r == nullptr) {
      return absl::UnavailableError(absl::StrCat("redis: ", ctx->errstr));
    }
    const auto* reply = static_cast<redisReply*>(r);
    absl::Status st;
    if (reply->type == REDIS_REPLY_ERROR) {
      st = absl::InternalError(absl::StrCat("redis HSET: ", std::string(reply->str, reply->len)));
    }
    freeReplyObject(r);
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

bool Valid(duckdb_vector vec, idx_t row) {
  uint64_t* validity = duckdb_vector_get_validity(vec);
  return validity == nullptr || duckdb_validity_row_is_valid(validity, row);
}

// Checks result column `col` holds Quiver type `t` in DuckDB's layout.
absl::Status CheckColumn(duckdb_result* result, idx_t col, ValueType t, const std::string& what) {
  duckdb_logical_type type = duckdb_column_logical_type(result, col);
  duckdb_type id = duckdb_get_type_id(type);
  duckdb_type child_id = DUCKDB_TYPE_INVALID;
  if (id == DUCKDB_TYPE_LIST) {
    duckdb_logical_type child = duckdb_list_type_child_type(type);
    child_id = duckdb_get_type_id(child);
    duckdb_destroy_logical_type(&child);
  }
  duckdb_destroy_logical_type(&type);
  bool ok = false;
  switch (t) {
    case ValueType::kInt64:
      ok = id == DUCKDB_TYPE_BIGINT;
      break;
    case ValueType::kDouble:
      ok = id == DUCKDB_TYPE_DOUBLE;
      break;
    case ValueType::kFloat:
      ok = id == DUCKDB_TYPE_FLOAT;
      break;
    case ValueType::kString:
      ok = id == DUCKDB_TYPE_VARCHAR;
      break;
    case ValueType::kUnixTimestamp:
      ok = id == DUCKDB_TYPE_TIMESTAMP;
      break;
    case ValueType::kFloatList:
      ok = id == DUCKDB_TYPE_LIST && child_id == DUCKDB_TYPE_FLOAT;
      break;
    default:
      break;
  }
  if (!ok) return absl::InvalidArgumentError(absl::StrCat(what, " is not ", TypeName(t)));
  return absl::OkStatus();
}

// Reads cell `row` of `vec` (checked by CheckColumn for `t`) into `v`,
// reusing its storage. Errors: kInvalidArgument for a null list element.
absl::Status ReadCell(duckdb_vector vec, idx_t row, ValueType t, Value* v) {
  v->type = t;
  if (!Valid(vec, row)) {
    v->data = std::monostate{};
    return absl::OkStatus();
  }
  void* data = duckdb_vector_get_data(vec);
  switch (t) {
    case ValueType::kInt64:
      v->data = static_cast<int64_t*>(data)[row];
      break;
    case ValueType::kDouble:
      v->data = static_cast<double*>(data)[row];
      break;
    case ValueType::kFloat:
      v->data = double{static_cast<float*>(data)[row]};
      break;
    case ValueType::kString: {
      duckdb_string_t* s = &static_cast<duckdb_string_t*>(data)[row];
      if (!std::holds_alternative<std::string>(v->data)) v->data.emplace<std::string>();
      std::get<std::string>(v->data).assign(duckdb_string_t_data(s), duckdb_string_t_length(*s));
      break;
    }
    default: {  // kFloatList
      const duckdb_list_entry e = static_cast<duckdb_list_entry*>(data)[row];
      duckdb_vector child = duckdb_list_vector_get_child(vec);
      const float* f = static_cast<const float*>(duckdb_vector_get_data(child));
      if (!std::holds_alternative<std::vector<double>>(v->data))
        v->data.emplace<std::vector<double>>();
      auto& out = std::get<std::vector<double>>(v->data);
      out.clear();
      for (idx_t i = e.offset; i < e.offset + e.length; ++i) {
        if (!Valid(child, i)) return absl::InvalidArgumentError("null element in a FLOAT[] list");
        out.push_back(f[i]);
      }
    }
  }
  return absl::OkStatus();
}

// Streams one view's latest rows into `ctx` as pipelined HSETs.
class ViewLoader {
 public:
  ViewLoader(redisContext* ctx, const LoadOptions& o) : ctx_(ctx), o_(o) {}

  absl::Status Load(const DuckConnection& conn, const ViewSpec& view, int64_t* rows) {
    const std::string path = absl::StrCat(o_.data_dir, "/", view.name, ".parquet");
    if (!std::filesystem::exists(path)) {
      return absl::InvalidArgumentError(absl::StrCat("missing ", path));
    }
    std::string columns = "entity_id, event_timestamp";
    std::vector<std::string> fields;  // hash field per feature
    for (const FeatureSpec& f : view.features) {
      absl::StrAppend(&columns, ", ", f.name);
      fields.push_back(FeatureField(view.name, f.name));
    }
    const std::string ts_field = TimestampField(view.name);
    DuckStream stream;
    if (auto st = stream.Start(
            conn, absl::StrCat("SELECT ", columns, " FROM read_parquet(", SqlLiteral(path),
                               ") QUALIFY row_number() OVER (PARTITION BY entity_id ",
                               "ORDER BY event_timestamp DESC, created DESC NULLS LAST) = 1"));
        !st.ok()) {
      return st;
    }
    const size_t nf = view.features.size();
    const std::string where = absl::StrCat(path, ": column ");
    if (auto st = CheckColumn(stream.result(), 0, ValueType::kInt64, where + "entity_id"); !st.ok())
      return st;
    if (auto st =
            CheckColumn(stream.result(), 1, ValueType::kUnixTimestamp, where + "event_timestamp");
        !st.ok()) {
      return st;
    }
    for (size_t f = 0; f < nf; ++f) {
      if (auto st = CheckColumn(stream.result(), 2 + f, view.features[f].type,
                                where + view.features[f].name);
          !st.ok()) {
        return st;
      }
    }
    std::vector<Value> cells(nf);
    std::vector<size_t> ends(nf + 1);  // end offsets of key, ts, values in buf
    std::vector<const char*> argv(4 + 2 * nf);
    std::vector<size_t> argv_len(4 + 2 * nf);
    argv[0] = "HSET";
    argv_len[0] = 4;
    argv[2] = ts_field.data();
    argv_len[2] = ts_field.size();
    for (size_t f = 0; f < nf; ++f) {
      argv[4 + 2 * f] = fields[f].data();
      argv_len[4 + 2 * f] = fields[f].size();
    }
    std::string buf;
    while (true) {
      auto next = stream.Next();
      if (!next.ok()) return next.status();
      if (*next == nullptr) break;
      ChunkHolder chunk(*next);
      const idx_t n = duckdb_data_chunk_get_size(chunk.get());
      duckdb_vector ids = duckdb_data_chunk_get_vector(chunk.get(), 0);
      duckdb_vector ts = duckdb_data_chunk_get_vector(chunk.get(), 1);
      const auto* id_data = static_cast<const int64_t*>(duckdb_vector_get_data(ids));
      const auto* ts_data = static_cast<const duckdb_timestamp*>(duckdb_vector_get_data(ts));
      for (idx_t r = 0; r < n; ++r) {
        if (!Valid(ids, r) || !Valid(ts, r)) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": null entity_id or event_timestamp"));
        }
        buf.clear();
        AppendEntityKeyV3(kJoinKey, id_data[r], &buf);
        buf.append(o_.project);
        const size_t key_end = buf.size();
        // Feast: ts.seconds = int(event_timestamp.timestamp()), truncated.
        AppendTimestampProto(ts_data[r].micros / 1000000, &buf);
        const size_t ts_end = buf.size();
        for (size_t f = 0; f < nf; ++f) {
          if (auto st = ReadCell(duckdb_data_chunk_get_vector(chunk.get(), 2 + f), r,
                                 view.features[f].type, &cells[f]);
              !st.ok()) {
            return absl::InvalidArgumentError(absl::StrCat(path, ": ", st.message()));
          }
          if (auto st = AppendValueProto(cells[f], &buf); !st.ok()) return st;
          ends[f] = buf.size();
        }
        argv[1] = buf.data();
        argv_len[1] = key_end;
        argv[3] = buf.data() + key_end;
        argv_len[3] = ts_end - key_end;
        size_t begin = ts_end;
        for (size_t f = 0; f < nf; ++f) {
          argv[5 + 2 * f] = buf.data() + begin;
          argv_len[5 + 2 * f] = ends[f] - begin;
          begin = ends[f];
        }
        if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(),
                                   argv_len.data()) != REDIS_OK) {
          return absl::UnavailableError(absl::StrCat("redis: ", ctx_->errstr));
        }
        ++*rows;
        if (++in_batch_ == o_.batch_commands) {
          // Two batches in flight: the previous one is answered while this
          // one is sent and the next one encoded.
          if (auto st = DrainReplies(ctx_, previous_batch_); !st.ok()) return st;
          previous_batch_ = in_batch_;
          in_batch_ = 0;
        }
      }
    }
    return absl::OkStatus();
  }

  absl::Status Finish() {
    absl::Status st = DrainReplies(ctx_, previous_batch_ + in_batch_);
    previous_batch_ = in_batch_ = 0;
    return st;
  }

 private:
  redisContext* ctx_;
  const LoadOptions& o_;
  int64_t in_batch_ = 0;
  int64_t previous_batch_ = 0;
};

}  // namespace

absl::StatusOr<double> RedisUsedMemoryMb(const std::string& host, int port) {
  auto ctx = ConnectRedis(host, port, 5000);
  if (!ctx.ok()) return ctx.status();
  auto* reply = static_cast<redisReply*>(redisCommand(ctx->get(), "INFO memory"));
  if (reply == nullptr) return absl::UnavailableError(absl::StrCat("redis INFO: ", (*ctx)->errstr));
  absl::StatusOr<double> mb = absl::UnavailableError("redis INFO: no used_memory");
  if (reply->type == REDIS_REPLY_STRING) {
    const std::string text(reply->str, reply->len);
    const size_t at = text.find("\nused_memory:");
    if (at != std::string::npos) mb = std::strtod(text.c_str() + at + 13, nullptr) / (1 << 20);
  }
  freeReplyObject(reply);
  return mb;
}

absl::StatusOr<LoadResult> LoadFeastRedis(const LoadOptions& options) {
  if (options.batch_commands < 1) return absl::InvalidArgumentError("batch must be >= 1");
  if (options.data_dir.empty()) return absl::InvalidArgumentError("no data folder");
  const auto start = std::chrono::steady_clock::now();
  auto ctx = ConnectRedis(options.host, options.port, options.timeout_ms);
  if (!ctx.ok()) return ctx.status();
  auto db = DuckDb::Open(options.duckdb_threads);
  if (!db.ok()) return db.status();
  auto conn = DuckConnection::Open(**db);
  if (!conn.ok()) return conn.status();

  LoadResult result;
  ViewLoader loader(ctx->get(), options);
  for (const ViewSpec& view : BenchViews()) {
    int64_t rows = 0;
    if (auto st = loader.Load(**conn, view, &rows); !st.ok()) return st;
    result.entities = std::max(result.entities, rows);
    result.commands += rows;
    ++result.views;
  }
  if (auto st = loader.Finish(); !st.ok()) return st;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  auto mb = RedisUsedMemoryMb(options.host, options.port);
  if (!mb.ok()) return mb.status();
  result.used_memory_mb = *mb;
  return result;
}

}  // namespace quiver::bench::feast
