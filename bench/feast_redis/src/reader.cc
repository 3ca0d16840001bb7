#include "quiver/bench/feast_redis/reader.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include "absl/strings/str_cat.h"
#include "feast_types.pb.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/timestamp.pb.h"
#include "quiver/bench/feast_redis/feast_layout.h"

namespace quiver::bench::feast {
namespace {

using ProtoValue = ::feast::types::Value;

// The alternative `T` of `v`, reusing its storage when it already holds one.
template <typename T>
T& Hold(Value* v, ValueType t) {
  v->type = t;
  if (auto* p = std::get_if<T>(&v->data)) return *p;
  return v->data.emplace<T>();
}

template <typename Src>
void AssignList(const Src& src, std::vector<int64_t>* dst) {
  dst->assign(src.begin(), src.end());
}

// The oneof case that holds declared type `t` (Feast's python_values_to_proto_values).
ProtoValue::ValCase CaseOf(ValueType t) {
  switch (t) {
    case ValueType::kInt32:
      return ProtoValue::kInt32Val;
    case ValueType::kInt64:
      return ProtoValue::kInt64Val;
    case ValueType::kFloat:
      return ProtoValue::kFloatVal;
    case ValueType::kDouble:
      return ProtoValue::kDoubleVal;
    case ValueType::kBool:
      return ProtoValue::kBoolVal;
    case ValueType::kString:
      return ProtoValue::kStringVal;
    case ValueType::kBytes:
      return ProtoValue::kBytesVal;
    case ValueType::kUnixTimestamp:
      return ProtoValue::kUnixTimestampVal;
    case ValueType::kInt32List:
      return ProtoValue::kInt32ListVal;
    case ValueType::kInt64List:
      return ProtoValue::kInt64ListVal;
    case ValueType::kFloatList:
      return ProtoValue::kFloatListVal;
    case ValueType::kDoubleList:
      return ProtoValue::kDoubleListVal;
    case ValueType::kBoolList:
      return ProtoValue::kBoolListVal;
    case ValueType::kStringList:
      return ProtoValue::kStringListVal;
    case ValueType::kBytesList:
      return ProtoValue::kBytesListVal;
    case ValueType::kUnixTimestampList:
      return ProtoValue::kUnixTimestampListVal;
    default:
      return ProtoValue::VAL_NOT_SET;
  }
}

// Copies the payload of `p` (whose case is CaseOf(t)) into `v`.
void CopyValue(const ProtoValue& p, ValueType t, Value* v) {
  v->type = t;
  switch (t) {
    case ValueType::kInt32:
      v->data = int64_t{p.int32_val()};
      break;
    case ValueType::kInt64:
      v->data = p.int64_val();
      break;
    case ValueType::kUnixTimestamp:
      v->data = p.unix_timestamp_val() * 1000000;
      break;
    case ValueType::kFloat:
      v->data = double{p.float_val()};
      break;
    case ValueType::kDouble:
      v->data = p.double_val();
      break;
    case ValueType::kBool:
      v->data = p.bool_val();
      break;
    case ValueType::kString:
      Hold<std::string>(v, t).assign(p.string_val());
      break;
    case ValueType::kBytes:
      Hold<std::string>(v, t).assign(p.bytes_val());
      break;
    case ValueType::kInt32List:
      AssignList(p.int32_list_val().val(), &Hold<std::vector<int64_t>>(v, t));
      break;
    case ValueType::kInt64List:
      AssignList(p.int64_list_val().val(), &Hold<std::vector<int64_t>>(v, t));
      break;
    case ValueType::kBoolList:
      AssignList(p.bool_list_val().val(), &Hold<std::vector<int64_t>>(v, t));
      break;
    case ValueType::kUnixTimestampList: {
      auto& dst = Hold<std::vector<int64_t>>(v, t);
      dst.clear();
      for (int64_t s : p.unix_timestamp_list_val().val()) dst.push_back(s * 1000000);
      break;
    }
    case ValueType::kFloatList: {
      const auto& src = p.float_list_val().val();
      Hold<std::vector<double>>(v, t).assign(src.begin(), src.end());
      break;
    }
    case ValueType::kDoubleList: {
      const auto& src = p.double_list_val().val();
      Hold<std::vector<double>>(v, t).assign(src.begin(), src.end());
      break;
    }
    case ValueType::kStringList:
    case ValueType::kBytesList: {
      const auto& src =
          t == ValueType::kStringList ? p.string_list_val().val() : p.bytes_list_val().val();
      Hold<std::vector<std::string>>(v, t).assign(src.begin(), src.end());
      break;
    }
    default:
      v->data = std::monostate{};
  }
}

}  // namespace

// Messages parsed on an arena that is reset at every Read, so decoding costs
// no malloc per value once the arena's first block is large enough.
struct FeastRedisReader::Decoder {
  google::protobuf::Arena arena;
  ProtoValue* value = nullptr;
  google::protobuf::Timestamp ts;

  void Reset() {
    arena.Reset();
    value = google::protobuf::Arena::CreateMessage<ProtoValue>(&arena);
  }
};

FeastRedisReader::FeastRedisReader() : decoder_(std::make_unique<Decoder>()) {}

FeastRedisReader::~FeastRedisReader() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

absl::Status FeastRedisReader::Connect(const std::string& host, int port,
                                       const std::string& project,
                                       std::vector<FeastFeatureRef> features,
                                       const std::string& join_key, int timeout_ms) {
  if (features.empty()) return absl::InvalidArgumentError("feast reader: no features");
  for (const auto& f : features) {
    if (CaseOf(f.type) == ProtoValue::VAL_NOT_SET) {
      return absl::InvalidArgumentError(
          absl::StrCat("feast reader: feature ", f.view, ":", f.feature, " has an invalid type"));
    }
  }
  if (ctx_ != nullptr) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  features_ = std::move(features);
  project_ = project;
  join_key_ = join_key;
  views_.clear();
  view_of_feature_.clear();
  fields_.clear();
  for (const auto& f : features_) {
    size_t v = 0;
    while (v < views_.size() && views_[v] != f.view) ++v;
    if (v == views_.size()) views_.push_back(f.view);
    view_of_feature_.push_back(v);
    fields_.push_back(FeatureField(f.view, f.feature));
  }
  for (const auto& view : views_) fields_.push_back(TimestampField(view));
  argv_.assign({"HMGET", nullptr});
  argv_len_.assign({5, 0});
  for (const auto& field : fields_) {
    argv_.push_back(field.data());
    argv_len_.push_back(field.size());
  }

  const timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  redisContext* ctx = redisConnectWithTimeout(host.c_str(), port, tv);
  if (ctx == nullptr || ctx->err != 0) {
    absl::Status st = absl::UnavailableError(
        absl::StrCat("feast reader: cannot connect to redis at ", host, ":", port, ": ",
                     ctx != nullptr ? ctx->errstr : "out of memory"));
    if (ctx != nullptr) redisFree(ctx);
    return st;
  }
  if (redisSetTimeout(ctx, tv) != REDIS_OK) {
    redisFree(ctx);
    return absl::UnavailableError("feast reader: cannot set the socket timeout");
  }
  ctx_ = ctx;
  return absl::OkStatus();
}

absl::Status FeastRedisReader::Read(std::span<const int64_t> entity_ids, FeastReadResult* out) {
  if (ctx_ == nullptr) return absl::FailedPreconditionError("feast reader: not connected");
  const size_t n = entity_ids.size();
  out->rows = n;
  out->features = features_.size();
  out->views = views_.size();
  out->values.resize(n * features_.size());
  out->event_ts_us.assign(n * views_.size(), 0);
  decoder_->Reset();

  auto lost = [this](const char* what) {
    absl::Status st = absl::UnavailableError(
        absl::StrCat("feast reader: ", what, ": ", ctx_->errstr[0] != 0 ? ctx_->errstr : "error"));
    redisFree(ctx_);  // replies may still be in flight: the connection is unusable
    ctx_ = nullptr;
    return st;
  };
  for (int64_t id : entity_ids) {
    key_.clear();
    AppendEntityKeyV3(join_key_, id, &key_);
    key_.append(project_);
    argv_[1] = key_.data();
    argv_len_[1] = key_.size();
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv_.size()), argv_.data(),
                               argv_len_.data()) != REDIS_OK) {
      return lost("cannot queue HMGET");
    }
  }
  absl::Status first_error;
  for (size_t row = 0; row < n; ++row) {
    void* reply = nullptr;
    if (redisGetReply(ctx_, &reply) != REDIS_OK || reply == nullptr) return lost("HMGET failed");
    absl::Status st = DecodeReply(reply, row, out);
    freeReplyObject(reply);
    if (first_error.ok()) first_error = st;  // keep reading: the replies must be drained
  }
  return first_error;
}

absl::Status FeastRedisReader::DecodeReply(const void* reply_ptr, size_t row,
                                           FeastReadResult* out) {
  const auto* reply = static_cast<const redisReply*>(reply_ptr);
  const size_t nf = features_.size();
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != fields_.size()) {
    return absl::DataLossError(absl::StrCat(
        "feast reader: unexpected HMGET reply: ",
        reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len) : "not an array"));
  }
  int64_t* ts = &out->event_ts_us[row * views_.size()];
  for (size_t v = 0; v < views_.size(); ++v) {
    const redisReply* e = reply->element[nf + v];
    if (e->type != REDIS_REPLY_STRING) continue;
    if (!decoder_->ts.ParseFromArray(e->str, static_cast<int>(e->len))) {
      return absl::DataLossError(absl::StrCat("feast reader: bad _ts:", views_[v]));
    }
    ts[v] = decoder_->ts.seconds() * 1000000 + decoder_->ts.nanos() / 1000;
  }
  Value* values = &out->values[row * nf];
  ProtoValue& p = *decoder_->value;
  for (size_t f = 0; f < nf; ++f) {
    const redisReply* e = reply->element[f];
    const ValueType t = features_[f].type;
    if (e->type != REDIS_REPLY_STRING) {  // a missing field is null (Go: Value_NullVal)
      values[f] = Value::Null(t);
      continue;
    }
    if (!p.ParseFromArray(e->str, static_cast<int>(e->len))) {
      return absl::DataLossError(absl::StrCat("feast reader: value of ", features_[f].view, ":",
                                              features_[f].feature, " does not parse"));
    }
    const ProtoValue::ValCase c = p.val_case();
    if (c == ProtoValue::VAL_NOT_SET || c == ProtoValue::kNullVal) {
      values[f] = Value::Null(t);
    } else if (c != CaseOf(t)) {
      return absl::DataLossError(absl::StrCat("feast reader: value of ", features_[f].view, ":",
                                              features_[f].feature, " is not a ", TypeName(t)));
    } else {
      CopyValue(p, t, &values[f]);
    }
  }
  return absl::OkStatus();
}

}  // namespace quiver::bench::feast
