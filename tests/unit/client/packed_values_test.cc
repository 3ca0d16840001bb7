#include "quiver/keys/packed_values.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <string>
#include <vector>

#include "value_samples.h"

namespace quiver {
namespace {

// One valid value of every type, some null.
std::vector<Value> EveryType() {
  std::vector<Value> values = testing::OneValueOfEveryType();
  values.push_back(Value::Null(ValueType::kString));
  values.push_back(Value::Null(ValueType::kDoubleList));
  return values;
}

std::vector<ValueType> TypesOf(const std::vector<Value>& values) {
  std::vector<ValueType> types;
  for (const Value& v : values) types.push_back(v.type);
  return types;
}

TEST(PackedValuesTest, CellsAreTheStoredPayloadsAndUnpackBack) {
  const std::vector<Value> values = EveryType();
  const std::vector<ValueType> types = TypesOf(values);
  std::string packed;
  AppendPackedValues(values, &packed);
  EXPECT_TRUE(CheckPackedValues(packed, types).ok());

  std::string_view in = packed;
  for (const Value& v : values) {
    SCOPED_TRACE(TypeName(v.type));
    absl::StatusOr<PackedCell> cell = NextPackedCell(&in, v.type);
    ASSERT_TRUE(cell.ok()) << cell.status();
    EXPECT_EQ(cell->is_null, v.is_null());
    std::string payload;
    AppendPayload(v, &payload);
    EXPECT_EQ(cell->payload, payload);  // what AppendPayload writes, byte for byte
    if (!v.is_null()) {
      EXPECT_TRUE(CheckPayload(v.type, payload).ok());
    }
    // A producer holding raw payloads packs the same bytes.
    std::string one, again;
    AppendPackedValues(std::span<const Value>(&v, 1), &one);
    if (v.is_null()) {
      AppendPackedNull(&again);
    } else {
      AppendPackedPayload(v.type, payload, &again);
    }
    EXPECT_EQ(again, one);
  }
  EXPECT_TRUE(in.empty());

  std::vector<Value> back;
  ASSERT_TRUE(UnpackValues(packed, types, &back).ok());
  EXPECT_EQ(back, values);
}

TEST(PackedValuesTest, MalformedCellsAreRejectedNamingTheFeature) {
  const std::vector<ValueType> types = {ValueType::kInt64, ValueType::kBool,
                                        ValueType::kFloatList};
  std::string good;
  AppendPackedValues(std::vector<Value>{Value::Int64(1), Value::Bool(false),
                                        Value{ValueType::kFloatList, std::vector<double>{1, 2}}},
                     &good);
  ASSERT_TRUE(CheckPackedValues(good, types).ok());
  // The cells start at 0 (INT64: tag + 8), 9 (BOOL: tag + 1) and 11 (list:
  // tag + u32 length + u32 count + 2 floats).
  struct Case {
    std::string name;
    std::string bytes;
    size_t bad_feature;
  };
  std::string bool_two = good;
  bool_two[10] = 2;  // BOOL payloads are 0 or 1
  std::string wrong_tag = good;
  wrong_tag[0] = static_cast<char>(ValueType::kDouble);
  std::string short_list = good;
  short_list[12] = 7;  // payload length 7 for 12 bytes of list
  std::string count_mismatch = good;
  count_mismatch[16] = 3;  // says 3 floats, holds 2
  const std::vector<Case> cases = {
      {"empty", "", 0},
      {"truncated fixed", good.substr(0, 5), 0},
      {"bool 2", bool_two, 1},
      {"wrong tag", wrong_tag, 0},
      {"truncated list", good.substr(0, good.size() - 1), 2},
      {"short list payload", short_list, 2},
      {"count mismatch", count_mismatch, 2},
      {"trailing bytes", good + "x", 3},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    size_t bad = 99;
    absl::Status st = CheckPackedValues(c.bytes, types, &bad);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
    EXPECT_EQ(bad, c.bad_feature);
    std::vector<Value> out;
    EXPECT_FALSE(UnpackValues(c.bytes, types, &out).ok());
  }
}

TEST(PackedValuesTest, CheckPayloadAgreesWithDecodePayload) {
  // Every payload CheckPayload accepts decodes; every one it rejects does not
  // decode or would not re-encode to the same bytes (a BOOL byte of 2).
  for (const Value& v : EveryType()) {
    if (v.is_null()) continue;
    SCOPED_TRACE(TypeName(v.type));
    std::string payload;
    AppendPayload(v, &payload);
    for (size_t cut = 0; cut < payload.size(); ++cut) {
      const std::string prefix = payload.substr(0, cut);
      const bool checked = CheckPayload(v.type, prefix).ok();
      const bool decoded = DecodePayload(v.type, prefix).ok();
      EXPECT_EQ(checked, decoded) << "prefix of " << cut << " bytes";
    }
    EXPECT_EQ(CheckPayload(v.type, payload + "z").ok(), DecodePayload(v.type, payload + "z").ok());
  }
  EXPECT_EQ(CheckPayload(ValueType::kBool, std::string(1, '\2')).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(CheckPayload(ValueType::kInvalid, "").code(), absl::StatusCode::kDataLoss);
}

TEST(PackedValuesTest, WriteRowsRoundTripAndGarbageNeverReadsOutOfBounds) {
  std::string blob;
  std::string packed;
  AppendPackedValues(EveryType(), &packed);
  AppendWriteRow("key-1", 10, 20, packed, &blob);
  AppendWriteRow("", -1, 0, "", &blob);
  std::string_view in = blob;
  absl::StatusOr<WriteRowView> a = NextWriteRow(&in);
  absl::StatusOr<WriteRowView> b = NextWriteRow(&in);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->entity_key, "key-1");
  EXPECT_EQ(a->event_ts_us, 10);
  EXPECT_EQ(a->created_ts_us, 20);
  EXPECT_EQ(a->packed_values, packed);
  EXPECT_EQ(b->entity_key, "");
  EXPECT_EQ(b->event_ts_us, -1);
  EXPECT_TRUE(in.empty());
  for (size_t cut = 0; cut < blob.size(); ++cut) {
    std::string_view prefix = std::string_view(blob).substr(0, cut);
    size_t rows = 0;
    while (!prefix.empty() && NextWriteRow(&prefix).ok()) ++rows;
    EXPECT_LE(rows, 1u);
  }
  // Random bytes: errors, never a read outside the input (run under ASan).
  std::mt19937 rng(7);
  const std::vector<ValueType> types = TypesOf(EveryType());
  for (int i = 0; i < 20000; ++i) {
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    if (i % 2 == 0 && !junk.empty()) junk[0] = static_cast<char>(types[0]);
    (void)CheckPackedValues(junk, types);
    std::vector<Value> out;
    (void)UnpackValues(junk, types, &out);
    std::string_view rest = junk;
    while (!rest.empty() && NextWriteRow(&rest).ok()) {
    }
  }
}

}  // namespace
}  // namespace quiver
