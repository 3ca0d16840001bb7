#include "quiver/keys/entity_key.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <map>
#include <random>

namespace quiver {
namespace {

TEST(EntityKeyTest, JoinKeyOrderDoesNotMatter) {
  auto a = EncodeEntityKey({{"origin", Value::String("LAX")}, {"destination", Value::String("SFO")}});
  auto b = EncodeEntityKey({{"destination", Value::String("SFO")}, {"origin", Value::String("LAX")}});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(EntityKeyTest, LayoutIsTheDocumentedOne) {
  auto k = EncodeEntityKey({{"id", Value::Int64(258)}});
  ASSERT_TRUE(k.ok());
  // u8 count | u16 name len | name | u8 type | u32 len | payload (LE)
  const std::string expected = std::string("\x01", 1) + std::string("\x02\x00", 2) + "id" +
                               std::string("\x02", 1) + std::string("\x08\x00\x00\x00", 4) +
                               std::string("\x02\x01\x00\x00\x00\x00\x00\x00", 8);
  EXPECT_EQ(*k, expected);
}

TEST(EntityKeyTest, TypeIsPartOfTheKey) {
  auto a = EncodeEntityKey({{"id", Value::Int64(1)}});
  auto b = EncodeEntityKey({{"id", Value::Int32(1)}});
  EXPECT_NE(*a, *b);
}

TEST(EntityKeyTest, DecodeInvertsEncode) {
  auto k = EncodeEntityKey({{"b", Value::String("x")}, {"a", Value::Int32(-3)}});
  auto parts = DecodeEntityKey(*k);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].join_key, "a");
  EXPECT_EQ((*parts)[0].value, Value::Int32(-3));
  EXPECT_EQ((*parts)[1].value, Value::String("x"));
  EXPECT_EQ(DecodeEntityKey(k->substr(0, k->size() - 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeEntityKey("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EntityKeyTest, RejectsBadKeys) {
  EXPECT_EQ(EncodeEntityKey({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeEntityKey({{"id", Value::Null(ValueType::kInt64)}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeEntityKey({{"id", Value::Int64(1)}, {"id", Value::Int64(2)}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeEntityKey({{"id", Value::String(std::string(5000, 'x'))}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EntityKeyTest, PartitionIsTopBitsOfXxh3) {
  auto k = EncodeEntityKey({{"origin", Value::String("ORD")}});
  const uint64_t h = XXH3_64bits(k->data(), k->size());
  EXPECT_EQ(EntityKeyToken(*k), h);
  EXPECT_EQ(PartitionOf(*k, 4096), static_cast<uint32_t>(h >> 52));
  EXPECT_EQ(PartitionOf(*k, 1), 0u);
  EXPECT_EQ(Log2PartitionCount(4096), 12);
  EXPECT_EQ(Log2PartitionCount(3000), -1);
}

TEST(EntityKeyTest, PartitionsSpreadEvenly) {
  constexpr uint32_t kQ = 64;
  std::map<uint32_t, int> counts;
  for (int i = 0; i < 64000; ++i) {
    counts[PartitionOf(*EncodeEntityKey({{"user_id", Value::Int64(i)}}), kQ)]++;
  }
  ASSERT_EQ(counts.size(), kQ);
  for (auto& [p, c] : counts) {
    EXPECT_GT(c, 800) << p;
    EXPECT_LT(c, 1200) << p;
  }
}

}  // namespace
}  // namespace quiver
