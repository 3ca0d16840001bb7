// Feast's Redis layout: MurmurHash3 against published vectors, entity keys and
// values against bytes worked out by hand from Feast's serialization rules
// (key_encoding_utils.serialize_entity_key v3, protobuf wire format).
#include "quiver/bench/feast_redis/feast_layout.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace quiver::bench::feast {
namespace {

using std::string_literals::operator""s;

TEST(Murmur3Test, MatchesPublishedVectors) {
  // MurmurHash3_x86_32 reference vectors (SMHasher; also quoted on Wikipedia
  // and by the mmh3 package's tests).
  EXPECT_EQ(Murmur3_32("", 0), 0u);
  EXPECT_EQ(Murmur3_32("", 1), 0x514E28B7u);
  EXPECT_EQ(Murmur3_32("", 0xffffffff), 0x81F16F39u);
  EXPECT_EQ(Murmur3_32("\0\0\0\0"s, 0), 0x2362F9DEu);
  EXPECT_EQ(Murmur3_32("\xff\xff\xff\xff", 0), 0x76293B50u);
  EXPECT_EQ(Murmur3_32("a", 0x9747b28c), 0x7FA09EA6u);
  EXPECT_EQ(Murmur3_32("ab", 0x9747b28c), 0x74875592u);
  EXPECT_EQ(Murmur3_32("abc", 0x9747b28c), 0xC84A62DDu);
  EXPECT_EQ(Murmur3_32("abcd", 0x9747b28c), 0xF0478627u);
  EXPECT_EQ(Murmur3_32("aaaa", 0x9747b28c), 0x5A97808Au);
  EXPECT_EQ(Murmur3_32("Hello, world!", 0x9747b28c), 0x24884CBAu);
  EXPECT_EQ(Murmur3_32("The quick brown fox jumps over the lazy dog", 0x9747b28c), 0x2FA826CDu);
  EXPECT_EQ(Murmur3_32("The quick brown fox jumps over the lazy dog", 0), 0x2E4FF723u);
}

TEST(FeastLayoutTest, FeatureFieldIsLittleEndianMurmurOfViewColonFeature) {
  const uint32_t h = Murmur3_32("fv_00:f0");
  const std::string field = FeatureField("fv_00", "f0");
  ASSERT_EQ(field.size(), 4u);
  EXPECT_EQ(static_cast<uint8_t>(field[0]), h & 0xff);
  EXPECT_EQ(static_cast<uint8_t>(field[1]), (h >> 8) & 0xff);
  EXPECT_EQ(static_cast<uint8_t>(field[2]), (h >> 16) & 0xff);
  EXPECT_EQ(static_cast<uint8_t>(field[3]), h >> 24);
  EXPECT_EQ(TimestampField("fv_03"), "_ts:fv_03");
}

TEST(FeastLayoutTest, EntityKeyV3MatchesHandComputedBytes) {
  // serialize_entity_key(EntityKey(join_keys=["entity_id"],
  //   entity_values=[Value(int64_val=5)]), 3) ++ b"bench":
  //   <I 1 | <I STRING=2 | <I 9 | "entity_id" | <I INT64=4 | <I 8 | <q 5 | "bench"
  const std::string expected =
      "\x01\x00\x00\x00"s
      "\x02\x00\x00\x00"s
      "\x09\x00\x00\x00"s
      "entity_id"
      "\x04\x00\x00\x00"s
      "\x08\x00\x00\x00"s
      "\x05\x00\x00\x00\x00\x00\x00\x00"s
      "bench";
  EXPECT_EQ(RedisKey("bench", "entity_id", 5), expected);

  std::string key;
  AppendEntityKeyV3("id", -2, &key);
  EXPECT_EQ(key,
            "\x01\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00"s
            "id"
            "\x04\x00\x00\x00\x08\x00\x00\x00\xfe\xff\xff\xff\xff\xff\xff\xff"s);
}

std::string Encode(const Value& v) {
  std::string out;
  EXPECT_TRUE(AppendValueProto(v, &out).ok());
  return out;
}

TEST(FeastLayoutTest, ValueProtoMatchesWireFormat) {
  // Field numbers from Feast's Value.proto: int64_val 4 (varint), double_val 5
  // (fixed64), float_val 6 (fixed32), string_val 2, bool_val 7,
  // float_list_val 16 (FloatList{repeated float val = 1}, packed).
  EXPECT_EQ(Encode(Value::Int64(5)), "\x20\x05");
  EXPECT_EQ(Encode(Value::Int64(-1)), "\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01");
  EXPECT_EQ(Encode(Value::Int64(0)), "\x20\x00"s);  // a set oneof is written even when 0
  EXPECT_EQ(Encode(Value::Double(1.5)), "\x29\x00\x00\x00\x00\x00\x00\xf8\x3f"s);
  EXPECT_EQ(Encode(Value::Float(1.5f)), "\x35\x00\x00\xc0\x3f"s);
  EXPECT_EQ(Encode(Value::String("ab")),
            "\x12\x02"
            "ab");
  EXPECT_EQ(Encode(Value::Bool(true)), "\x38\x01");
  EXPECT_EQ(Encode(Value{ValueType::kFloatList, std::vector<double>{1.0, -2.0}}),
            "\x82\x01\x0a\x0a\x08\x00\x00\x80\x3f\x00\x00\x00\xc0"s);
  EXPECT_EQ(Encode(Value::Null(ValueType::kInt64)), "");
  EXPECT_EQ(Encode(Value::Null(ValueType::kFloatList)), "");
}

TEST(FeastLayoutTest, ValueProtoRejectsAValueNotOfItsType) {
  std::string out;
  EXPECT_EQ(AppendValueProto(Value{ValueType::kInt64, 1.5}, &out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AppendValueProto(Value{}, &out).code(), absl::StatusCode::kInvalidArgument);
}

TEST(FeastLayoutTest, TimestampProtoHoldsSecondsOnly) {
  std::string out;
  AppendTimestampProto(1, &out);
  EXPECT_EQ(out, "\x08\x01");
  out.clear();
  AppendTimestampProto(1700000000, &out);  // varint of 1700000000
  EXPECT_EQ(out, "\x08\x80\xe2\xcf\xaa\x06");
}

}  // namespace
}  // namespace quiver::bench::feast
