#include "quiver/keys/value.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "value_samples.h"

namespace quiver {
namespace {

TEST(ValueTest, PayloadRoundTripsEveryType) {
  const std::vector<Value> values = testing::OneValueOfEveryType();
  for (const Value& v : values) {
    SCOPED_TRACE(TypeName(v.type));
    ASSERT_TRUE(CheckValue(v).ok());
    std::string payload;
    AppendPayload(v, &payload);
    auto back = DecodePayload(v.type, payload);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, v);
  }
}

TEST(ValueTest, FixedWidthsAreTheDeclaredOnes) {
  std::string p;
  AppendPayload(Value::Int32(1), &p);
  EXPECT_EQ(p.size(), 4u);
  p.clear();
  AppendPayload(Value::Float(1), &p);
  EXPECT_EQ(p.size(), 4u);
  p.clear();
  AppendPayload(Value::Int64(1), &p);
  EXPECT_EQ(p.size(), 8u);
}

TEST(ValueTest, TruncatedPayloadIsDataLoss) {
  std::string p;
  AppendPayload(Value{ValueType::kStringList, std::vector<std::string>{"abc", "def"}}, &p);
  for (size_t cut = 0; cut < p.size(); ++cut) {
    auto v = DecodePayload(ValueType::kStringList, std::string_view(p).substr(0, cut));
    EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss) << "cut=" << cut;
  }
  EXPECT_EQ(DecodePayload(ValueType::kInt64, "1234567").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(ValueTest, CheckValueRejectsNarrowingAndMismatch) {
  EXPECT_EQ(CheckValue(Value{ValueType::kInt32, int64_t{1} << 40}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckValue(Value{ValueType::kFloat, 1e300}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckValue(Value{ValueType::kInt64, std::string("x")}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckValue(Value::Null(ValueType::kDouble)).ok());
}

TEST(ValueTest, TypeNamesParseBack) {
  for (int raw : {1, 2, 3, 4, 5, 6, 7, 8, 17, 18, 19, 20, 21, 22, 23, 24}) {
    const auto t = static_cast<ValueType>(raw);
    auto parsed = ParseTypeName(TypeName(t));
    ASSERT_TRUE(parsed.ok()) << TypeName(t);
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_EQ(*ParseTypeName("list<float>"), ValueType::kFloatList);
  EXPECT_EQ(ParseTypeName("DECIMAL").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValueTest, ParseScalarFromCsvText) {
  EXPECT_EQ(*ParseScalar(ValueType::kInt64, "42"), Value::Int64(42));
  EXPECT_TRUE(ParseScalar(ValueType::kInt64, "")->is_null());
  EXPECT_EQ(ParseScalar(ValueType::kInt32, "99999999999").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseScalar(ValueType::kInt64, "4x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseScalar(ValueType::kUnixTimestamp, "1970-01-01T00:00:01Z"),
            Value::UnixTimestamp(1000000));
  // FLOAT: rounded to float; beyond its range an error, not an infinity.
  EXPECT_EQ(*ParseScalar(ValueType::kFloat, "0.1"), Value::Float(0.1f));
  EXPECT_EQ(ParseScalar(ValueType::kFloat, "1e300").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*ParseScalar(ValueType::kFloat, "inf"), Value::Float(INFINITY));
}

TEST(ValueTest, TimestampsFormatAsRfc3339Utc) {
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTimestamp(1500000), "1970-01-01T00:00:01.500000Z");
  EXPECT_EQ(*ParseTimestamp("2026-11-20T13:05:00Z"), *ParseTimestamp("2026-11-20 13:05:00"));
  EXPECT_EQ(*ParseTimestamp("2026-11-20T15:05:00+02:00"), *ParseTimestamp("2026-11-20T13:05:00"));
  EXPECT_EQ(*ParseTimestamp("1970-01-02"), int64_t{86400} * 1000000);
  EXPECT_EQ(ParseTimestamp("yesterday").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValueTest, JsonOutput) {
  std::string out;
  AppendJson(Value::String("a\"b"), &out);
  EXPECT_EQ(out, "\"a\\\"b\"");
  out.clear();
  AppendJson(Value::Null(ValueType::kInt64), &out);
  EXPECT_EQ(out, "null");
  out.clear();
  AppendJson(Value{ValueType::kFloatList, std::vector<double>{0.5, 2}}, &out);
  EXPECT_EQ(out, "[0.5,2]");
}

}  // namespace
}  // namespace quiver
