#include "quiver/client/convert.h"

#include <gtest/gtest.h>

#include <limits>

namespace quiver::client {
namespace {

// One non-null sample per type, with the wire field it must land in.
struct Sample {
  Value value;
  quiver::v1::Value::ValCase field;
};

std::vector<Sample> Samples() {
  using PV = quiver::v1::Value;
  return {
      {Value::Int32(-7), PV::kInt32Val},
      {Value::Int64(int64_t{1} << 40), PV::kInt64Val},
      {Value::Float(1.5f), PV::kFloatVal},
      {Value::Double(-2.25e100), PV::kDoubleVal},
      {Value::Bool(true), PV::kBoolVal},
      {Value::String("LAX"), PV::kStringVal},
      {Value::Bytes(std::string("\0\xff", 2)), PV::kBytesVal},
      {Value::UnixTimestamp(1700000000123456), PV::kUnixTimestampVal},
      {Value{ValueType::kInt32List, std::vector<int64_t>{1, -2, 2147483647}}, PV::kInt32ListVal},
      {Value{ValueType::kInt64List, std::vector<int64_t>{int64_t{1} << 50}}, PV::kInt64ListVal},
      {Value{ValueType::kFloatList, std::vector<double>{0.5, -0.25}}, PV::kFloatListVal},
      {Value{ValueType::kDoubleList, std::vector<double>{1e300}}, PV::kDoubleListVal},
      {Value{ValueType::kBoolList, std::vector<int64_t>{1, 0, 1}}, PV::kBoolListVal},
      {Value{ValueType::kStringList, std::vector<std::string>{"a", ""}}, PV::kStringListVal},
      {Value{ValueType::kBytesList, std::vector<std::string>{"\x01"}}, PV::kBytesListVal},
      {Value{ValueType::kUnixTimestampList, std::vector<int64_t>{5, 6}}, PV::kUnixTimestampListVal},
  };
}

TEST(ConvertTest, EveryTypeRoundTrips) {
  for (const Sample& s : Samples()) {
    const quiver::v1::Value wire = ToProto(s.value);
    EXPECT_EQ(wire.val_case(), s.field) << TypeName(s.value.type);
    auto back = FromProto(wire, s.value.type);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, s.value) << TypeName(s.value.type);
    // Through bytes too, as it travels.
    quiver::v1::Value parsed;
    ASSERT_TRUE(parsed.ParseFromString(wire.SerializeAsString()));
    EXPECT_EQ(FromProto(parsed, s.value.type).value(), s.value);
  }
}

TEST(ConvertTest, NullsRoundTripAsUnsetFields) {
  for (const Sample& s : Samples()) {
    const quiver::v1::Value wire = ToProto(Value::Null(s.value.type));
    EXPECT_EQ(wire.val_case(), quiver::v1::Value::VAL_NOT_SET);
    auto back = FromProto(wire, s.value.type);
    ASSERT_TRUE(back.ok());
    EXPECT_TRUE(back->is_null());
    EXPECT_EQ(back->type, s.value.type);
  }
}

TEST(ConvertTest, WireFieldMustMatchDeclaredType) {
  quiver::v1::Value wire;
  wire.set_int64_val(5);
  EXPECT_EQ(FromProto(wire, ValueType::kInt32).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FromProto(wire, ValueType::kUnixTimestamp).status().code(),
            absl::StatusCode::kInvalidArgument);
  wire.set_double_val(1.0);
  EXPECT_EQ(FromProto(wire, ValueType::kFloat).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FromProto(wire, ValueType::kInvalid).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ConvertTest, NarrowTypesKeepTheirRange) {
  const auto big = std::numeric_limits<int32_t>::min();
  auto v = FromProto(ToProto(Value::Int32(big)), ValueType::kInt32);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(std::get<int64_t>(v->data), big);
  const float max = std::numeric_limits<float>::max();
  auto f = FromProto(ToProto(Value::Float(max)), ValueType::kFloat);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(std::get<double>(f->data), double{max});
}

TEST(ConvertTest, TypeEnumsMapBothWays) {
  for (const Sample& s : Samples()) {
    EXPECT_EQ(FromProtoType(ToProtoType(s.value.type)), s.value.type);
    EXPECT_EQ(static_cast<int>(ToProtoType(s.value.type)), static_cast<int>(s.field));
  }
}

}  // namespace
}  // namespace quiver::client
