#include "quiver/coordinator/partition_map.h"

#include <gtest/gtest.h>

#include <map>
#include <numeric>
#include <set>

namespace quiver::coordinator {
namespace {

std::vector<uint32_t> Ids(uint32_t n) {
  std::vector<uint32_t> ids(n);
  std::iota(ids.begin(), ids.end(), 1);
  return ids;
}

// Checks size, distinctness and floor/ceil evenness of held and preferred counts.
void ExpectBalanced(const Assignment& a, uint32_t q, const std::vector<uint32_t>& ids, uint32_t r) {
  ASSERT_EQ(a.size(), q);
  const size_t n = ids.size();
  const size_t r_eff = std::min<size_t>(r, n);
  std::map<uint32_t, int64_t> held, preferred;
  for (uint32_t id : ids) held[id] = preferred[id] = 0;
  for (const auto& part : a) {
    ASSERT_EQ(part.size(), r_eff);
    EXPECT_EQ(std::set<uint32_t>(part.begin(), part.end()).size(), r_eff) << "replicas not distinct";
    for (uint32_t id : part) {
      ASSERT_TRUE(held.count(id)) << "unknown node " << id;
      ++held[id];
    }
    ++preferred[part[0]];
  }
  const int64_t total = int64_t{q} * int64_t(r_eff);
  for (uint32_t id : ids) {
    EXPECT_GE(held[id], total / int64_t(n)) << "node " << id;
    EXPECT_LE(held[id], (total + int64_t(n) - 1) / int64_t(n)) << "node " << id;
    EXPECT_GE(preferred[id], int64_t{q} / int64_t(n)) << "node " << id;
    EXPECT_LE(preferred[id], (int64_t{q} + int64_t(n) - 1) / int64_t(n)) << "node " << id;
  }
}

// Replica slots of `after` that `before` did not hold for the same partition.
int64_t Moved(const Assignment& before, const Assignment& after) {
  int64_t moved = 0;
  for (size_t p = 0; p < after.size(); ++p) {
    std::set<uint32_t> old(before[p].begin(), before[p].end());
    for (uint32_t id : after[p]) moved += !old.count(id);
  }
  return moved;
}

TEST(PartitionMapTest, EmptyWithoutNodes) {
  EXPECT_TRUE(AssignPartitions({}, 4096, {}, 3).empty());
}

TEST(PartitionMapTest, BalancedForManyShapes) {
  for (uint32_t q : {1u, 8u, 64u, 4096u}) {
    for (uint32_t n : {1u, 2u, 3u, 4u, 5u, 7u, 10u}) {
      for (uint32_t r : {1u, 2u, 3u}) {
        SCOPED_TRACE(testing::Message() << "Q=" << q << " N=" << n << " R=" << r);
        ExpectBalanced(AssignPartitions({}, q, Ids(n), r), q, Ids(n), r);
      }
    }
  }
}

TEST(PartitionMapTest, GrowingOneNodeAtATimeStaysBalancedAndMovesLittle) {
  const uint32_t q = 4096, r = 3;
  Assignment a;
  for (uint32_t n = 1; n <= 8; ++n) {
    SCOPED_TRACE(n);
    Assignment next = AssignPartitions(a, q, Ids(n), r);
    ExpectBalanced(next, q, Ids(n), r);
    if (n > r) {
      // Only the new node's share moves: Q * R / N slots (plus rounding).
      const int64_t share = (int64_t{q} * r + n - 1) / n;
      EXPECT_LE(Moved(a, next), share + 1);
      EXPECT_GE(Moved(a, next), share - 1);
    }
    a = std::move(next);
  }
}

TEST(PartitionMapTest, FourthNodeMovesAQuarterOfTheSlots) {
  const uint32_t q = 4096;
  const Assignment three = AssignPartitions({}, q, Ids(3), 3);
  const Assignment four = AssignPartitions(three, q, Ids(4), 3);
  ExpectBalanced(four, q, Ids(4), 3);
  EXPECT_EQ(Moved(three, four), int64_t{q} * 3 / 4);
}

TEST(PartitionMapTest, Deterministic) {
  const Assignment a = AssignPartitions({}, 1024, {9, 3, 5, 11}, 3);
  const Assignment b = AssignPartitions({}, 1024, {11, 5, 3, 9}, 3);
  EXPECT_EQ(a, b);
  EXPECT_EQ(AssignPartitions(a, 1024, {3, 5, 9, 11, 20}, 3),
            AssignPartitions(b, 1024, {20, 3, 5, 9, 11}, 3));
}

TEST(PartitionMapTest, StableWhenNothingChanges) {
  const Assignment a = AssignPartitions({}, 4096, Ids(5), 3);
  EXPECT_EQ(AssignPartitions(a, 4096, Ids(5), 3), a);
}

TEST(PartitionMapTest, DropsUnknownNodesAndRefills) {
  Assignment a = AssignPartitions({}, 256, Ids(4), 3);
  a[0] = {1, 1, 42};  // duplicate and unknown id
  const Assignment b = AssignPartitions(a, 256, Ids(4), 3);
  ExpectBalanced(b, 256, Ids(4), 3);
  EXPECT_EQ(b[0][0], 1u);
}

}  // namespace
}  // namespace quiver::coordinator
