// Feast's HTTP feature server bodies (../shared/research/feast-compat.md §2):
// `POST /get-online-features` requests parsed into a quiver::client
// OnlineRequest, and responses written as Feast's Python server writes them
// (feature_server_utils.convert_response_to_dict): columnar `results`, join
// keys first, then one column per feature; `metadata.feature_names`; status
// names; RFC 3339 UTC timestamps with `Z`. JSON by nlohmann-json (its
// ordered_json keeps the request's column order, as Python's dict does).
//
// Thread-safety: pure functions.
#ifndef QUIVER_FEATURE_SERVER_FEAST_JSON_H_
#define QUIVER_FEATURE_SERVER_FEAST_JSON_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "quiver/client/client.h"
#include "quiver/client/registry_index.h"

namespace quiver::feature_server {

// An error to answer with: the HTTP status and the JSON body.
struct HttpError {
  int status = 500;
  std::string body;
};

struct ParsedOnlineRequest {
  client::OnlineRequest request;  // entity_rows typed as the registry declares
  bool full_feature_names = false;
  // The request's join key columns, in request order, echoed first in the
  // response (Feast: status PRESENT, timestamp 0).
  std::vector<std::string> join_keys;
  std::vector<std::vector<Value>> join_key_values;  // [join key][row]
};

// Parses a /get-online-features body:
//   {"entities": {col: [v, ...], ...}, "features": [ref, ...] | "feature_service": name,
//    "full_feature_names": bool, "request_context": {field: [v, ...]}}
// `entities` holds join keys and (Python style) on-demand request fields;
// `request_context` (the Go server's) may hold the request fields instead.
// Keys that are neither are ignored, as Feast does. Values are JSON natives
// converted to the declared types (INT64/INT32 from integers, DOUBLE/FLOAT
// from numbers, STRING from strings, BOOL from booleans, BYTES from base64
// strings, UNIX_TIMESTAMP from integer seconds; null for null).
// Errors (returned as the HttpError to send, none retryable):
//   422: the body is not a JSON object, `entities` is missing or not an
//        object of arrays, `features` is not an array of strings (FastAPI's
//        validation error shape: {"detail": [{"type", "loc", "msg"}]});
//   400: columns of different lengths, no rows, more than `max_rows`, a
//        value of the wrong type (naming the column and row), neither
//        `features` nor `feature_service`.
// Unknown feature views, features and services are found by the client
// (LookupError maps them).
absl::StatusOr<ParsedOnlineRequest> ParseGetOnlineFeatures(std::string_view body,
                                                           const client::RegistryIndex& registry,
                                                           size_t max_rows, HttpError* error);

// Rows to write to feature views (POST /write-to-online-store, /push).
struct ParsedWrite {
  std::vector<std::string> views;
  std::vector<std::vector<client::WriteRowInput>> rows;  // one list per view
};

// POST /write-to-online-store {"feature_view_name": V, "df": {col: [..]}}
// and POST /push {"push_source_name": P, "df": {..}, "to": "online"}.
// `df` is columnar, as Feast's pandas frame: each view's join keys, its
// source's timestamp field (RFC 3339 / ISO 8601 text, no zone meaning UTC,
// or integer seconds) and, when the source has one, its created timestamp
// column (optional: missing means the event timestamp), and every feature
// of the view (a missing feature column is an error; null values are
// nulls). Other columns are ignored. A push writes every view the push
// source feeds.
// Errors: 422 (body shape, as ParseGetOnlineFeatures; an unknown push
// source: Feast's PushSourceNotFoundException; `to` other than "online":
// Quiver has no offline writes), 404 (unknown feature view), 400 (a missing
// column, a value of the wrong type, columns of different lengths).
absl::StatusOr<ParsedWrite> ParseWriteToOnlineStore(std::string_view body,
                                                    const client::RegistryIndex& registry,
                                                    HttpError* error);
absl::StatusOr<ParsedWrite> ParsePush(std::string_view body, const client::RegistryIndex& registry,
                                      HttpError* error);

// POST /materialize {"start_ts": T, "end_ts": T, "feature_views": [..] | null}
// and /materialize-incremental {"end_ts": T, "feature_views": ..}. unit:
// microseconds since the epoch. Errors: 422 (shape, a missing end_ts),
// 400 (a timestamp that does not parse, start not before end).
struct ParsedMaterialize {
  int64_t start_us = 0;
  int64_t end_us = 0;
  std::vector<std::string> views;  // empty: every online view
};
absl::StatusOr<ParsedMaterialize> ParseMaterialize(std::string_view body, bool incremental,
                                                   HttpError* error);

// The response body for `parsed` and the client's `response`.
std::string GetOnlineFeaturesJson(const ParsedOnlineRequest& parsed,
                                  const client::OnlineResponse& response);

// A lookup error as Feast's server answers it: kNotFound (unknown view,
// feature or service) → 404, kInvalidArgument → 400, kResourceExhausted →
// 400, anything else → 500 (kUnavailable/kDeadlineExceeded: 503, retryable).
// Body: Feast's error detail, a JSON string holding
// {"module": "feast.errors", "class": ..., "message": ...}.
HttpError LookupError(const absl::Status& status);

// RFC 3339 UTC with `Z` and Feast's adaptive fraction (none, .mmm or
// .uuuuuu). unit of `us`: microseconds since the epoch.
std::string FeastTimestamp(int64_t us);

// FastAPI's {"detail": message} (Feast's 401 bodies).
std::string DetailBody(const std::string& message);

// Feast's error body: a JSON string of {"module", "class", "message"}.
std::string FeastErrorBody(const std::string& class_name, const std::string& message);

}  // namespace quiver::feature_server

#endif  // QUIVER_FEATURE_SERVER_FEAST_JSON_H_
