// Fuzz target: the write side's packed encodings and the value payload codec
// (client/include/quiver/keys/packed_values.h, quiver/keys/value.h): what a
// node accepts from a Write (WriteRow.packed_values, WriteRequest.packed_rows)
// before storing the bytes unchanged.
//
// Input: a declared-types prefix (fuzz_util.h TakeTypes), then bytes read
// three ways:
//   1. as one row's packed values: CheckPackedValues, UnpackValues and a walk
//      with NextPackedCell must agree (same verdict, same failing feature);
//      accepted values are well-formed (CheckValue) and AppendPackedValues
//      gives the bytes back (a FLOAT NaN may change payload: floats are held
//      as doubles);
//   2. as WriteRequest.packed_rows: NextWriteRow until the end or an error;
//      AppendWriteRow of the rows read gives the bytes back;
//   3. as a payload of the first declared type: CheckPayload accepts exactly
//      what DecodePayload decodes, into a value that passes CheckValue and
//      re-encodes (AppendPayload) to the same bytes, as value.h promises.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "quiver/keys/packed_values.h"
#include "quiver/keys/value.h"

namespace quiver::fuzz {
namespace {

bool HasFloat(const std::vector<ValueType>& types) {
  for (ValueType t : types) {
    if (ElementType(t) == ValueType::kFloat) return true;
  }
  return false;
}

void PackedValues(std::string_view in, const std::vector<ValueType>& types) {
  size_t bad_check = SIZE_MAX, bad_unpack = SIZE_MAX;
  const absl::Status checked = CheckPackedValues(in, types, &bad_check);
  std::vector<Value> values;
  const absl::Status unpacked = UnpackValues(in, types, &values, &bad_unpack);
  FUZZ_CHECK(checked.ok() == unpacked.ok(), "CheckPackedValues %s but UnpackValues %s",
             checked.ToString().c_str(), unpacked.ToString().c_str());
  // NextPackedCell, as the node's write path walks a row.
  std::string_view walk = in;
  size_t bad_walk = SIZE_MAX;
  for (size_t i = 0; i < types.size(); ++i) {
    auto cell = NextPackedCell(&walk, types[i]);
    if (!cell.ok()) {
      FUZZ_CHECK(cell.status().code() == absl::StatusCode::kInvalidArgument, "%s",
                 cell.status().ToString().c_str());
      bad_walk = i;
      break;
    }
  }
  if (bad_walk == SIZE_MAX && !walk.empty()) bad_walk = types.size();
  if (!checked.ok()) {
    FUZZ_CHECK(checked.code() == absl::StatusCode::kInvalidArgument, "%s", checked.ToString().c_str());
    FUZZ_CHECK(unpacked.code() == absl::StatusCode::kInvalidArgument, "%s", unpacked.ToString().c_str());
    FUZZ_CHECK(bad_check == bad_unpack && bad_check == bad_walk,
               "failing feature: check %zu, unpack %zu, walk %zu", bad_check, bad_unpack, bad_walk);
    return;
  }
  FUZZ_CHECK(bad_walk == SIZE_MAX, "NextPackedCell refused feature %zu that CheckPackedValues accepted",
             bad_walk);
  FUZZ_CHECK(values.size() == types.size(), "%zu values for %zu types", values.size(), types.size());
  for (size_t i = 0; i < values.size(); ++i) {
    FUZZ_CHECK(values[i].type == types[i], "value %zu typed %d, declared %d", i,
               static_cast<int>(values[i].type), static_cast<int>(types[i]));
    const absl::Status s = CheckValue(values[i]);
    FUZZ_CHECK(s.ok(), "value %zu is ill-formed: %s", i, s.ToString().c_str());
  }
  // NextCheckedPackedCell (the store's unchecked walk) sees the same cells.
  std::string_view fast = in, slow = in;
  for (ValueType t : types) {
    const PackedCell a = NextCheckedPackedCell(&fast, t);
    auto b = NextPackedCell(&slow, t);
    FUZZ_CHECK(b.ok() && a.is_null == b->is_null && a.payload == b->payload, "checked walk differs");
  }
  std::string again;
  AppendPackedValues(values, &again);
  if (!HasFloat(types)) {
    FUZZ_CHECK(again == in, "AppendPackedValues(UnpackValues(x)) != x (%zu vs %zu bytes)",
               again.size(), in.size());
  } else {
    FUZZ_CHECK(again.size() == in.size(), "re-packed %zu bytes of %zu", again.size(), in.size());
  }
}

void WriteRows(std::string_view in) {
  std::string again;
  std::string_view rest = in;
  while (!rest.empty()) {
    const std::string_view before = rest;
    auto row = NextWriteRow(&rest);
    if (!row.ok()) {
      FUZZ_CHECK(row.status().code() == absl::StatusCode::kInvalidArgument, "%s",
                 row.status().ToString().c_str());
      rest = before;
      break;
    }
    AppendWriteRow(row->entity_key, row->event_ts_us, row->created_ts_us, row->packed_values, &again);
  }
  FUZZ_CHECK(again == in.substr(0, in.size() - rest.size()), "AppendWriteRow(NextWriteRow(x)) != x");
}

void Payload(std::string_view in, ValueType t) {
  const absl::Status checked = CheckPayload(t, in);
  auto decoded = DecodePayload(t, in);
  FUZZ_CHECK(checked.ok() == decoded.ok(), "CheckPayload %s but DecodePayload %s for type %d",
             checked.ToString().c_str(), decoded.status().ToString().c_str(), static_cast<int>(t));
  if (!decoded.ok()) {
    FUZZ_CHECK(decoded.status().code() == absl::StatusCode::kDataLoss, "%s",
               decoded.status().ToString().c_str());
    return;
  }
  FUZZ_CHECK(decoded->type == t, "decoded type %d, asked %d", static_cast<int>(decoded->type),
             static_cast<int>(t));
  const absl::Status s = CheckValue(*decoded);
  FUZZ_CHECK(s.ok(), "decoded value is ill-formed: %s", s.ToString().c_str());
  std::string again;
  AppendPayload(*decoded, &again);
  if (ElementType(t) != ValueType::kFloat) {
    FUZZ_CHECK(again == in, "AppendPayload(DecodePayload(x)) != x for type %d", static_cast<int>(t));
  } else {
    FUZZ_CHECK(again.size() == in.size(), "float payload re-encoded to %zu bytes of %zu",
               again.size(), in.size());
    auto twice = DecodePayload(t, again);
    FUZZ_CHECK(twice.ok() && SameValue(*twice, *decoded), "float payload does not decode again");
  }
}

}  // namespace
}  // namespace quiver::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quiver;
  using namespace quiver::fuzz;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::vector<ValueType> types = TakeTypes(&in);
  PackedValues(in, types);
  WriteRows(in);
  Payload(in, types.empty() ? ValueType::kStringList : types[0]);
  return 0;
}
