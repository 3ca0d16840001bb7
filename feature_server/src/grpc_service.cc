// feast.serving.ServingService over quiver::Client (grpc_service.h).
#include "grpc_service.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "columns.h"

namespace quiver::feature_server {
namespace {

using feast::types::Value;

grpc::Status Invalid(const std::string& message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
}

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(s.code())),
                      std::string(s.message()));
}

// A Feast value as a Quiver value of `type`. Integers of either width are
// accepted for INT32/INT64 (Feast's clients send int64_val for INT64 keys,
// some int32_val for small ones), as are float/double for FLOAT/DOUBLE.
absl::StatusOr<quiver::Value> FromFeast(const Value& v, ValueType type) {
  switch (v.val_case()) {
    case Value::VAL_NOT_SET:
    case Value::kNullVal:
      return quiver::Value::Null(type);
    default:
      break;
  }
  auto integer = [&]() -> std::optional<int64_t> {
    if (v.val_case() == Value::kInt64Val) return v.int64_val();
    if (v.val_case() == Value::kInt32Val) return v.int32_val();
    return std::nullopt;
  };
  switch (type) {
    case ValueType::kInt64:
      if (auto i = integer()) return quiver::Value::Int64(*i);
      break;
    case ValueType::kInt32:
      if (auto i = integer(); i && *i >= INT32_MIN && *i <= INT32_MAX) {
        return quiver::Value::Int32(static_cast<int32_t>(*i));
      }
      break;
    case ValueType::kDouble:
      if (v.val_case() == Value::kDoubleVal) return quiver::Value::Double(v.double_val());
      if (v.val_case() == Value::kFloatVal) return quiver::Value::Double(v.float_val());
      break;
    case ValueType::kFloat:
      if (v.val_case() == Value::kFloatVal) return quiver::Value::Float(v.float_val());
      if (v.val_case() == Value::kDoubleVal) return quiver::Value::Float(static_cast<float>(v.double_val()));
      break;
    case ValueType::kBool:
      if (v.val_case() == Value::kBoolVal) return quiver::Value::Bool(v.bool_val());
      break;
    case ValueType::kString:
      if (v.val_case() == Value::kStringVal) return quiver::Value::String(v.string_val());
      break;
    case ValueType::kBytes:
      if (v.val_case() == Value::kBytesVal) return quiver::Value::Bytes(v.bytes_val());
      break;
    case ValueType::kUnixTimestamp:
      if (v.val_case() == Value::kUnixTimestampVal) {
        return quiver::Value::UnixTimestamp(v.unix_timestamp_val() * 1000000);
      }
      break;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("a value of field ", static_cast<int>(v.val_case()),
                                                 " where ", TypeName(type), " is declared"));
}

// A Quiver value as Feast's (null: an unset Value).
void ToFeast(const quiver::Value& v, Value* out) {
  if (v.is_null()) return;
  switch (v.type) {
    case ValueType::kInt32: out->set_int32_val(static_cast<int32_t>(std::get<int64_t>(v.data))); return;
    case ValueType::kInt64: out->set_int64_val(std::get<int64_t>(v.data)); return;
    case ValueType::kUnixTimestamp: out->set_unix_timestamp_val(std::get<int64_t>(v.data) / 1000000); return;
    case ValueType::kDouble: out->set_double_val(std::get<double>(v.data)); return;
    case ValueType::kFloat: out->set_float_val(static_cast<float>(std::get<double>(v.data))); return;
    case ValueType::kBool: out->set_bool_val(std::get<bool>(v.data)); return;
    case ValueType::kString: out->set_string_val(std::get<std::string>(v.data)); return;
    case ValueType::kBytes: out->set_bytes_val(std::get<std::string>(v.data)); return;
    case ValueType::kInt32List:
      for (int64_t x : std::get<std::vector<int64_t>>(v.data)) out->mutable_int32_list_val()->add_val(static_cast<int32_t>(x));
      return;
    case ValueType::kInt64List:
      for (int64_t x : std::get<std::vector<int64_t>>(v.data)) out->mutable_int64_list_val()->add_val(x);
      return;
    case ValueType::kUnixTimestampList:
      for (int64_t x : std::get<std::vector<int64_t>>(v.data)) out->mutable_unix_timestamp_list_val()->add_val(x / 1000000);
      return;
    case ValueType::kDoubleList:
      for (double x : std::get<std::vector<double>>(v.data)) out->mutable_double_list_val()->add_val(x);
      return;
    case ValueType::kFloatList:
      for (double x : std::get<std::vector<double>>(v.data)) out->mutable_float_list_val()->add_val(static_cast<float>(x));
      return;
    case ValueType::kStringList:
      for (const std::string& x : std::get<std::vector<std::string>>(v.data)) out->mutable_string_list_val()->add_val(x);
      return;
    case ValueType::kBytesList:
      for (const std::string& x : std::get<std::vector<std::string>>(v.data)) out->mutable_bytes_list_val()->add_val(x);
      return;
    default:
      return;
  }
}

feast::serving::FieldStatus ToFeast(client::FeatureStatus s) {
  switch (s) {
    case client::FeatureStatus::kPresent: return feast::serving::PRESENT;
    case client::FeatureStatus::kNullValue: return feast::serving::NULL_VALUE;
    case client::FeatureStatus::kNotFound: return feast::serving::NOT_FOUND;
    case client::FeatureStatus::kOutsideMaxAge: return feast::serving::OUTSIDE_MAX_AGE;
  }
  return feast::serving::INVALID;
}

void SetTimestamp(int64_t us, google::protobuf::Timestamp* ts) {
  int64_t seconds = us / 1000000, micros = us % 1000000;
  if (micros < 0) {
    micros += 1000000;
    --seconds;
  }
  ts->set_seconds(seconds);
  ts->set_nanos(static_cast<int32_t>(micros * 1000));
}

}  // namespace

grpc::Status ServingServiceImpl::GetFeastServingInfo(grpc::ServerContext*,
                                                     const feast::serving::GetFeastServingInfoRequest*,
                                                     feast::serving::GetFeastServingInfoResponse* resp) {
  resp->set_version("quiver");
  return grpc::Status::OK;
}

grpc::Status ServingServiceImpl::GetOnlineFeatures(grpc::ServerContext* ctx,
                                                   const feast::serving::GetOnlineFeaturesRequest* req,
                                                   feast::serving::GetOnlineFeaturesResponse* resp) {
  std::string authorization;
  if (auto it = ctx->client_metadata().find("authorization"); it != ctx->client_metadata().end()) {
    authorization.assign(it->second.data(), it->second.size());
  }
  Denial denial;
  auto identity = access_->Authenticate(authorization, &denial);
  if (!identity.ok()) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, denial.message);
  std::shared_ptr<const client::RegistryIndex> registry = client_->registry();
  const ColumnTypes types = ColumnTypesOf(*registry);
  client::OnlineRequest request;
  if (req->kind_case() == feast::serving::GetOnlineFeaturesRequest::kFeatureService) {
    request.feature_service = req->feature_service();
  } else {
    request.features.assign(req->features().val().begin(), req->features().val().end());
  }
  if (request.feature_service.empty() && request.features.empty()) {
    return Invalid("name features or a feature_service");
  }
  // Columns read, sorted by name; join keys are echoed first.
  std::map<std::string, std::vector<quiver::Value>> join_keys, others;
  size_t rows = 0;
  bool first = true;
  for (const auto* columns : {&req->entities(), &req->request_context()}) {
    for (const auto& [name, list] : *columns) {
      if (first) {
        rows = static_cast<size_t>(list.val_size());
        first = false;
      } else if (static_cast<size_t>(list.val_size()) != rows) {
        return Invalid(absl::StrCat("entity columns have different lengths (", name, ": ",
                                    list.val_size(), ", others: ", rows, ")"));
      }
      bool is_join_key = false;
      const ValueType type = types.TypeOf(name, &is_join_key);
      if (type == ValueType::kInvalid) continue;  // ignored, as Feast
      std::vector<quiver::Value>& values = (is_join_key ? join_keys : others)[name];
      values.clear();
      for (int r = 0; r < list.val_size(); ++r) {
        absl::StatusOr<quiver::Value> v = FromFeast(list.val(r), type);
        if (!v.ok()) return Invalid(absl::StrCat("column ", name, ", row ", r, ": ", v.status().message()));
        values.push_back(*std::move(v));
      }
    }
  }
  if (rows == 0) return Invalid("no entity rows");
  if (rows > max_entity_rows_) {
    return Invalid(absl::StrCat(rows, " entity rows; at most ", max_entity_rows_, " per request"));
  }
  request.entity_rows.resize(rows);
  for (const auto* columns : {&join_keys, &others}) {
    for (const auto& [name, values] : *columns) {
      for (size_t r = 0; r < rows; ++r) request.entity_rows[r].emplace(name, values[r]);
    }
  }
  if (auto denied = access_->Authorize(*identity, *registry, ReadResources(*registry, request))) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, denied->message);
  }
  absl::StatusOr<client::OnlineResponse> response = client_->GetOnlineFeatures(request);
  if (!response.ok()) return ToGrpc(response.status());

  auto* names = resp->mutable_metadata()->mutable_feature_names();
  for (const auto& [name, values] : join_keys) {
    names->add_val(name);
    auto* vector = resp->add_results();
    for (const quiver::Value& v : values) {
      ToFeast(v, vector->add_values());
      vector->add_statuses(feast::serving::PRESENT);
      vector->add_event_timestamps();
    }
  }
  for (size_t f = 0; f < response->feature_refs.size(); ++f) {
    const std::string& ref = response->feature_refs[f];
    const size_t colon = ref.find(':');
    names->add_val(req->full_feature_names()
                       ? absl::StrCat(ref.substr(0, colon), "__", ref.substr(colon + 1))
                       : ref.substr(colon + 1));
    auto* vector = resp->add_results();
    for (const auto& row : response->rows) {
      const client::FeatureValue& fv = row[f];
      ToFeast(fv.value, vector->add_values());
      vector->add_statuses(ToFeast(fv.status));
      SetTimestamp(fv.event_ts_us, vector->add_event_timestamps());
    }
  }
  return grpc::Status::OK;
}

}  // namespace quiver::feature_server
