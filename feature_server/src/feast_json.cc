// Feast's /get-online-features JSON (feast_json.h).
#include "quiver/feature_server/feast_json.h"

#include <map>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "columns.h"
#include "nlohmann/json.hpp"

namespace quiver::feature_server {
namespace {

using Json = nlohmann::ordered_json;

HttpError Unprocessable(const std::string& type, const std::vector<std::string>& loc,
                        const std::string& msg) {
  Json detail = Json::object();
  detail["type"] = type;
  detail["loc"] = loc;
  detail["msg"] = msg;
  Json body = Json::object();
  body["detail"] = Json::array({detail});
  return {422, body.dump()};
}

HttpError BadRequest(const std::string& message) {
  return {400, FeastErrorBody("ValueError", message)};
}

// Records `e` as the answer to send and returns the status for it
// (`code`: kInvalidArgument unless the request names something unknown).
absl::Status Refuse(HttpError e, HttpError* error,
                    absl::StatusCode code = absl::StatusCode::kInvalidArgument) {
  *error = std::move(e);
  return absl::Status(code, error->body);
}

// The root object of a body, or the 422 FastAPI gives for anything else.
absl::StatusOr<Json> ParseObject(std::string_view body, HttpError* error) {
  Json root = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Refuse(Unprocessable("json_invalid", {"body"}, "JSON decode error"), error);
  if (!root.is_object()) {
    return Refuse(Unprocessable("model_attributes_type", {"body"}, "Input should be a valid dictionary or object"),
                  error);
  }
  return root;
}

// `j` as a value of `type`. Errors: a message naming what was wanted.
absl::StatusOr<Value> ToValue(const Json& j, ValueType type) {
  if (j.is_null()) return Value::Null(type);
  switch (type) {
    case ValueType::kInt32:
    case ValueType::kInt64:
    case ValueType::kUnixTimestamp:
      // nlohmann's is_number_integer() holds for unsigned numbers too, and
      // get<int64_t>() wraps those above INT64_MAX (2^64-1 read as -1).
      if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        return absl::InvalidArgumentError("an integer in range");
      }
      if (j.is_number_integer()) {
        const int64_t v = j.get<int64_t>();
        if (type == ValueType::kInt32) {
          if (v < INT32_MIN || v > INT32_MAX) return absl::InvalidArgumentError("an INT32 in range");
          return Value::Int32(static_cast<int32_t>(v));
        }
        if (type == ValueType::kUnixTimestamp) {
          int64_t us = 0;
          if (__builtin_mul_overflow(v, int64_t{1000000}, &us)) {
            return absl::InvalidArgumentError("a timestamp in range (integer seconds)");
          }
          return Value::UnixTimestamp(us);
        }
        return Value::Int64(v);
      }
      return absl::InvalidArgumentError("an integer");
    case ValueType::kDouble:
    case ValueType::kFloat:
      if (j.is_number()) {
        const double d = j.get<double>();
        return type == ValueType::kFloat ? Value::Float(static_cast<float>(d)) : Value::Double(d);
      }
      return absl::InvalidArgumentError("a number");
    case ValueType::kBool:
      if (j.is_boolean()) return Value::Bool(j.get<bool>());
      return absl::InvalidArgumentError("true or false");
    case ValueType::kString:
      if (j.is_string()) return Value::String(j.get<std::string>());
      return absl::InvalidArgumentError("a string");
    case ValueType::kBytes: {
      std::string raw;
      if (j.is_string() && absl::Base64Unescape(j.get<std::string>(), &raw)) return Value::Bytes(raw);
      return absl::InvalidArgumentError("a base64 string");
    }
    default:
      return absl::InvalidArgumentError("a scalar (lists are not join keys or request fields)");
  }
}

Json ToJson(const Value& v) {
  if (v.is_null()) return nullptr;
  switch (v.type) {
    case ValueType::kBytes: return absl::Base64Escape(std::get<std::string>(v.data));
    case ValueType::kUnixTimestamp: {
      // Feast: integer seconds.
      const int64_t us = std::get<int64_t>(v.data);
      return us / 1000000 - (us % 1000000 < 0 ? 1 : 0);  // floor, without negating INT64_MIN
    }
    case ValueType::kBytesList: {
      Json out = Json::array();
      for (const std::string& s : std::get<std::vector<std::string>>(v.data)) {
        out.push_back(absl::Base64Escape(s));
      }
      return out;
    }
    case ValueType::kUnixTimestampList: {
      Json out = Json::array();
      for (int64_t us : std::get<std::vector<int64_t>>(v.data)) out.push_back(us / 1000000);
      return out;
    }
    default:
      break;
  }
  return std::visit(
      [](const auto& x) -> Json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          return nullptr;
        } else {
          return Json(x);
        }
      },
      v.data);
}

}  // namespace

std::string FeastTimestamp(int64_t us) {
  const absl::Time t = absl::FromUnixMicros(us);
  const char* format = us % 1000000 == 0 ? "%Y-%m-%dT%H:%M:%SZ"
                       : us % 1000 == 0  ? "%Y-%m-%dT%H:%M:%E3SZ"
                                         : "%Y-%m-%dT%H:%M:%E6SZ";
  return absl::FormatTime(format, t, absl::UTCTimeZone());
}

std::string DetailBody(const std::string& message) {
  Json body = Json::object();
  body["detail"] = message;
  return body.dump();
}

std::string FeastErrorBody(const std::string& class_name, const std::string& message) {
  // Feast's FeastError.to_error_detail: Python's json.dumps of the three
  // fields (", " and ": " separators, non-ASCII escaped), which its handler
  // passes to JSONResponse as a string: the body is that text as a JSON
  // string.
  auto quoted = [](const std::string& text) { return Json(text).dump(-1, ' ', true); };
  const std::string detail = absl::StrCat("{\"module\": ", quoted("feast.errors"), ", \"class\": ",
                                          quoted(class_name), ", \"message\": ", quoted(message), "}");
  return Json(detail).dump();
}

absl::StatusOr<ParsedOnlineRequest> ParseGetOnlineFeatures(std::string_view body,
                                                           const client::RegistryIndex& registry,
                                                           size_t max_rows, HttpError* error) {
  auto fail = [&](HttpError e) { return Refuse(std::move(e), error); };
  absl::StatusOr<Json> parsed = ParseObject(body, error);
  if (!parsed.ok()) return parsed.status();
  const Json& root = *parsed;
  ParsedOnlineRequest out;
  const ColumnTypes types = ColumnTypesOf(registry);
  auto entities = root.find("entities");
  if (entities == root.end()) return fail(Unprocessable("missing", {"body", "entities"}, "Field required"));
  size_t rows = 0;
  bool first = true;
  std::vector<std::pair<std::string, std::vector<Value>>> columns;
  auto read_columns = [&](const Json& object, const char* where) -> absl::Status {
    if (!object.is_object()) {
      return fail(Unprocessable("dict_type", {"body", where}, "Input should be a valid dictionary"));
    }
    for (const auto& [name, list] : object.items()) {
      if (!list.is_array()) {
        return fail(Unprocessable("list_type", {"body", where, name}, "Input should be a valid list"));
      }
      if (first) {
        rows = list.size();
        first = false;
      } else if (list.size() != rows) {
        return fail(BadRequest(absl::StrCat("entity columns have different lengths (", name, ": ",
                                            list.size(), ", others: ", rows, ")")));
      }
      bool is_join_key = false;
      const ValueType type = types.TypeOf(name, &is_join_key);
      if (type == ValueType::kInvalid) continue;  // ignored, as Feast
      std::vector<Value> values;
      values.reserve(list.size());
      for (size_t r = 0; r < list.size(); ++r) {
        absl::StatusOr<Value> v = ToValue(list[r], type);
        if (!v.ok()) {
          return fail(BadRequest(absl::StrCat("column ", name, ", row ", r, ": ", list[r].dump(),
                                              " is not ", v.status().message())));
        }
        values.push_back(*std::move(v));
      }
      if (is_join_key) {
        out.join_keys.push_back(name);
        out.join_key_values.push_back(values);
      }
      columns.emplace_back(name, std::move(values));
    }
    return absl::OkStatus();
  };
  if (absl::Status s = read_columns(*entities, "entities"); !s.ok()) return s;
  if (auto rc = root.find("request_context"); rc != root.end() && !rc->is_null()) {
    if (absl::Status s = read_columns(*rc, "request_context"); !s.ok()) return s;
  }
  if (rows == 0) return fail(BadRequest("no entity rows"));
  if (rows > max_rows) {
    return fail(BadRequest(absl::StrCat(rows, " entity rows; at most ", max_rows, " per request")));
  }
  if (auto fs = root.find("feature_service"); fs != root.end() && !fs->is_null()) {
    if (!fs->is_string()) {
      return fail(Unprocessable("string_type", {"body", "feature_service"}, "Input should be a valid string"));
    }
    out.request.feature_service = fs->get<std::string>();
  } else if (auto features = root.find("features"); features != root.end()) {
    if (!features->is_array()) {
      return fail(Unprocessable("list_type", {"body", "features"}, "Input should be a valid list"));
    }
    for (size_t i = 0; i < features->size(); ++i) {
      if (!(*features)[i].is_string()) {
        return fail(Unprocessable("string_type", {"body", "features", std::to_string(i)},
                                  "Input should be a valid string"));
      }
      out.request.features.push_back((*features)[i].get<std::string>());
    }
  }
  if (out.request.feature_service.empty() && out.request.features.empty()) {
    return fail(BadRequest("name features or a feature_service"));
  }
  if (auto full = root.find("full_feature_names"); full != root.end() && !full->is_null()) {
    if (!full->is_boolean()) {
      return fail(Unprocessable("bool_type", {"body", "full_feature_names"}, "Input should be a valid boolean"));
    }
    out.full_feature_names = full->get<bool>();
  }
  out.request.entity_rows.resize(rows);
  for (auto& [name, values] : columns) {
    for (size_t r = 0; r < rows; ++r) out.request.entity_rows[r].emplace(name, values[r]);
  }
  return out;
}

namespace {

// A timestamp cell: text (a space instead of the T is accepted, as pandas
// prints it) or integer seconds. unit: microseconds.
absl::StatusOr<int64_t> TimestampOf(const Json& j) {
  if (j.is_number_integer()) {
    // Years 1 to 9999, as text timestamps: more would overflow microseconds.
    constexpr int64_t kMinSeconds = -62135596800, kMaxSeconds = 253402300799;
    const bool in_range = j.is_number_unsigned()
                              ? j.get<uint64_t>() <= static_cast<uint64_t>(kMaxSeconds)
                              : j.get<int64_t>() >= kMinSeconds && j.get<int64_t>() <= kMaxSeconds;
    if (!in_range) return absl::InvalidArgumentError("seconds out of range");
    return j.get<int64_t>() * 1000000;
  }
  if (!j.is_string()) return absl::InvalidArgumentError("not a timestamp");
  std::string text = j.get<std::string>();
  if (text.size() > 10 && text[10] == ' ') text[10] = 'T';
  return ParseTimestamp(text);
}

// The rows of `view` from the columnar frame `df`.
absl::StatusOr<std::vector<client::WriteRowInput>> FrameRows(const Json& df,
                                                             const client::RegistryIndex& registry,
                                                             const client::ViewInfo& view,
                                                             HttpError* error) {
  auto fail = [&](HttpError e) { return Refuse(std::move(e), error); };
  const quiver::v1::DataSource* source = nullptr;
  for (const auto& s : registry.registry().sources()) {
    if (s.name() == view.view->source()) source = &s;
  }
  if (source == nullptr) return fail(BadRequest("the view's data source is unknown"));
  size_t rows = 0;
  bool first = true;
  for (const auto& [name, list] : df.items()) {
    if (!list.is_array()) {
      return fail(Unprocessable("list_type", {"body", "df", name}, "Input should be a valid list"));
    }
    if (first) {
      rows = list.size();
      first = false;
    } else if (list.size() != rows) {
      return fail(BadRequest(absl::StrCat("df columns have different lengths (", name, ": ",
                                          list.size(), ", others: ", rows, ")")));
    }
  }
  auto column = [&](const std::string& name) -> const Json* {
    auto it = df.find(name);
    return it == df.end() ? nullptr : &*it;
  };
  const std::string view_name = view.view->name();
  std::vector<client::WriteRowInput> out(rows);
  for (const client::JoinKeySpec& k : view.join_keys) {
    const Json* list = column(k.join_key);
    if (list == nullptr) return fail(BadRequest(absl::StrCat("df has no column ", k.join_key, " (a join key of ", view_name, ")")));
    for (size_t r = 0; r < rows; ++r) {
      absl::StatusOr<Value> v = ToValue((*list)[r], k.type);
      if (!v.ok() || v->is_null()) {
        return fail(BadRequest(absl::StrCat("column ", k.join_key, ", row ", r, ": ", (*list)[r].dump(),
                                            " is not ", v.ok() ? "a value (a join key is never null)" : v.status().message())));
      }
      out[r].entity.emplace(k.join_key, *std::move(v));
    }
  }
  const Json* ts = column(source->timestamp_field());
  if (ts == nullptr) return fail(BadRequest(absl::StrCat("df has no column ", source->timestamp_field(), " (the event timestamp of ", view_name, ")")));
  const Json* created = source->created_timestamp_column().empty() ? nullptr : column(source->created_timestamp_column());
  for (size_t r = 0; r < rows; ++r) {
    absl::StatusOr<int64_t> t = TimestampOf((*ts)[r]);
    if (!t.ok()) return fail(BadRequest(absl::StrCat("column ", source->timestamp_field(), ", row ", r, ": ", (*ts)[r].dump(), " is not a timestamp")));
    out[r].event_ts_us = *t;
    out[r].created_ts_us = *t;
    if (created != nullptr && !(*created)[r].is_null()) {
      absl::StatusOr<int64_t> c = TimestampOf((*created)[r]);
      if (!c.ok()) return fail(BadRequest(absl::StrCat("column ", source->created_timestamp_column(), ", row ", r, ": ", (*created)[r].dump(), " is not a timestamp")));
      out[r].created_ts_us = *c;
    }
  }
  for (int f = 0; f < view.view->features_size(); ++f) {
    const std::string& name = view.view->features(f).name();
    const Json* list = column(name);
    if (list == nullptr) return fail(BadRequest(absl::StrCat("df has no column ", name, " (a feature of ", view_name, ")")));
    const ValueType type = view.feature_types[static_cast<size_t>(f)];
    for (size_t r = 0; r < rows; ++r) {
      absl::StatusOr<Value> v = (*list)[r].is_array() ? absl::StatusOr<Value>(absl::InvalidArgumentError("a scalar")) : ToValue((*list)[r], type);
      if (!v.ok()) {
        return fail(BadRequest(absl::StrCat("column ", name, ", row ", r, ": ", (*list)[r].dump(), " is not ", v.status().message())));
      }
      out[r].values.push_back(*std::move(v));
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<ParsedWrite> ParseWriteToOnlineStore(std::string_view body,
                                                    const client::RegistryIndex& registry,
                                                    HttpError* error) {
  absl::StatusOr<Json> root = ParseObject(body, error);
  if (!root.ok()) return root.status();
  auto name = root->find("feature_view_name");
  if (name == root->end() || !name->is_string()) {
    return Refuse(Unprocessable("missing", {"body", "feature_view_name"}, "Field required"), error);
  }
  auto df = root->find("df");
  if (df == root->end() || !df->is_object()) {
    return Refuse(Unprocessable("dict_type", {"body", "df"}, "Input should be a valid dictionary"), error);
  }
  const client::ViewInfo* view = registry.FindView(name->get<std::string>());
  if (view == nullptr) {
    return Refuse({404, FeastErrorBody("FeatureViewNotFoundException",
                                  absl::StrCat("Feature view ", name->get<std::string>(), " does not exist"))}, error, absl::StatusCode::kNotFound);
  }
  auto rows = FrameRows(*df, registry, *view, error);
  if (!rows.ok()) return rows.status();
  ParsedWrite out;
  out.views.push_back(view->view->name());
  out.rows.push_back(*std::move(rows));
  return out;
}

absl::StatusOr<ParsedWrite> ParsePush(std::string_view body, const client::RegistryIndex& registry,
                                      HttpError* error) {
  absl::StatusOr<Json> root = ParseObject(body, error);
  if (!root.ok()) return root.status();
  auto name = root->find("push_source_name");
  if (name == root->end() || !name->is_string()) {
    return Refuse(Unprocessable("missing", {"body", "push_source_name"}, "Field required"), error);
  }
  auto df = root->find("df");
  if (df == root->end() || !df->is_object()) {
    return Refuse(Unprocessable("dict_type", {"body", "df"}, "Input should be a valid dictionary"), error);
  }
  if (auto to = root->find("to"); to != root->end() && !to->is_null() && *to != "online") {
    return Refuse({422, FeastErrorBody("ValueError", absl::StrCat("push to ", to->dump(),
                                                             ": Quiver's push writes the online store only "
                                                             "(the offline store is the source files)"))}, error);
  }
  const quiver::v1::PushSource* push = nullptr;
  for (const auto& p : registry.registry().push_sources()) {
    if (p.name() == name->get<std::string>()) push = &p;
  }
  if (push == nullptr) {
    return Refuse({422, FeastErrorBody("PushSourceNotFoundException",
                                  absl::StrCat("Unable to find push source '", name->get<std::string>(), "'."))}, error, absl::StatusCode::kNotFound);
  }
  ParsedWrite out;
  for (const std::string& view_name : push->feature_views()) {
    const client::ViewInfo* view = registry.FindView(view_name);
    if (view == nullptr) {
      return Refuse({404, FeastErrorBody("FeatureViewNotFoundException", absl::StrCat("Feature view ", view_name, " does not exist"))}, error, absl::StatusCode::kNotFound);
    }
    auto rows = FrameRows(*df, registry, *view, error);
    if (!rows.ok()) return rows.status();
    out.views.push_back(view_name);
    out.rows.push_back(*std::move(rows));
  }
  return out;
}

absl::StatusOr<ParsedMaterialize> ParseMaterialize(std::string_view body, bool incremental,
                                                   HttpError* error) {
  absl::StatusOr<Json> root = ParseObject(body, error);
  if (!root.ok()) return root.status();
  ParsedMaterialize out;
  auto time_of = [&](const char* key, bool required, int64_t* us) -> absl::Status {
    auto it = root->find(key);
    if (it == root->end() || it->is_null()) {
      if (!required) return absl::OkStatus();
      return Refuse(Unprocessable("missing", {"body", key}, "Field required"), error);
    }
    absl::StatusOr<int64_t> t = TimestampOf(*it);
    if (!t.ok()) {
      return Refuse(BadRequest(absl::StrCat(key, ": ", it->dump(), " is not a timestamp")), error);
    }
    *us = *t;
    return absl::OkStatus();
  };
  if (!incremental) {
    if (absl::Status s = time_of("start_ts", true, &out.start_us); !s.ok()) return s;
  }
  if (absl::Status s = time_of("end_ts", true, &out.end_us); !s.ok()) return s;
  if (!incremental && out.start_us >= out.end_us) {
    return Refuse(BadRequest("start_ts must be before end_ts"), error);
  }
  if (auto views = root->find("feature_views"); views != root->end() && !views->is_null()) {
    if (!views->is_array()) {
      return Refuse(Unprocessable("list_type", {"body", "feature_views"}, "Input should be a valid list"), error);
    }
    for (const auto& v : *views) {
      if (!v.is_string()) {
        return Refuse(Unprocessable("string_type", {"body", "feature_views"}, "Input should be a valid string"), error);
      }
      out.views.push_back(v.get<std::string>());
    }
  }
  return out;
}

namespace {

// Appends `j` as nlohmann's dump() writes it (numbers in their shortest
// round-trip form, strings escaped); invalid UTF-8 in a string value is
// replaced (U+FFFD) rather than failing the whole response.
void AppendJson(const Json& j, std::string* out) {
  out->append(j.dump(-1, ' ', false, Json::error_handler_t::replace));
}

// FeastTimestamp of the few distinct event timestamps of a response (one per
// view per row, usually far fewer), each formatted once.
class TimestampCache {
 public:
  void Append(int64_t us, std::string* out) {
    for (const auto& [t, text] : seen_) {
      if (t == us) {
        out->append(text);
        return;
      }
    }
    if (seen_.size() >= 64) seen_.clear();
    seen_.emplace_back(us, absl::StrCat("\"", FeastTimestamp(us), "\""));
    out->append(seen_.back().second);
  }

 private:
  std::vector<std::pair<int64_t, std::string>> seen_;
};

}  // namespace

// Written straight into one string, in exactly the bytes nlohmann's dump() of
// the equivalent document gives ({"results":[{"values":[..],"statuses":[..],
// "event_timestamps":[..]},..],"metadata":{"feature_names":[..]}}): building
// that document first cost ~100 µs per 1 x 50 response (bench/feature_server,
// 2026-12-08), more than the lookup itself.
std::string GetOnlineFeaturesJson(const ParsedOnlineRequest& parsed,
                                  const client::OnlineResponse& response) {
  const size_t rows = response.rows.size();
  const size_t columns = parsed.join_keys.size() + response.feature_refs.size();
  std::string out;
  out.reserve(64 + columns * (80 + rows * 48));
  TimestampCache timestamps;
  out.append("{\"results\":[");
  auto open_column = [&](bool first) { out.append(first ? "{\"values\":[" : ",{\"values\":["); };
  auto separator = [&](size_t i) {
    if (i > 0) out.push_back(',');
  };
  for (size_t k = 0; k < parsed.join_keys.size(); ++k) {
    open_column(k == 0);
    const std::vector<Value>& values = parsed.join_key_values[k];
    for (size_t i = 0; i < values.size(); ++i) {
      separator(i);
      AppendJson(ToJson(values[i]), &out);
    }
    out.append("],\"statuses\":[");
    for (size_t i = 0; i < values.size(); ++i) {
      separator(i);
      out.append("\"PRESENT\"");
    }
    out.append("],\"event_timestamps\":[");
    for (size_t i = 0; i < values.size(); ++i) {
      separator(i);
      timestamps.Append(0, &out);
    }
    out.append("]}");
  }
  for (size_t f = 0; f < response.feature_refs.size(); ++f) {
    open_column(f == 0 && parsed.join_keys.empty());
    for (size_t r = 0; r < rows; ++r) {
      separator(r);
      AppendJson(ToJson(response.rows[r][f].value), &out);
    }
    out.append("],\"statuses\":[");
    for (size_t r = 0; r < rows; ++r) {
      separator(r);
      out.push_back('"');
      out.append(client::FeatureStatusName(response.rows[r][f].status));
      out.push_back('"');
    }
    out.append("],\"event_timestamps\":[");
    for (size_t r = 0; r < rows; ++r) {
      separator(r);
      timestamps.Append(response.rows[r][f].event_ts_us, &out);
    }
    out.append("]}");
  }
  out.append("],\"metadata\":{\"feature_names\":[");
  for (size_t k = 0; k < parsed.join_keys.size(); ++k) {
    separator(k);
    AppendJson(parsed.join_keys[k], &out);
  }
  for (size_t f = 0; f < response.feature_refs.size(); ++f) {
    separator(parsed.join_keys.size() + f);
    const std::string& ref = response.feature_refs[f];
    const size_t colon = ref.find(':');
    AppendJson(parsed.full_feature_names
                   ? absl::StrCat(ref.substr(0, colon), "__", ref.substr(colon + 1))
                   : ref.substr(colon + 1),
               &out);
  }
  out.append("]}}");
  return out;
}

HttpError LookupError(const absl::Status& status) {
  const std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return {404, FeastErrorBody(message.find("service") != std::string::npos
                                      ? "FeatureServiceNotFoundException"
                                      : "FeatureViewNotFoundException",
                                  message)};
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kResourceExhausted:
      return {400, FeastErrorBody("ValueError", message)};
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return {503, FeastErrorBody("FeastError", message)};
    default:
      return {500, FeastErrorBody("FeastError", message)};
  }
}

}  // namespace quiver::feature_server
