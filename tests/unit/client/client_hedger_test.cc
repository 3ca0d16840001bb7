// The Hedger's slow marks (client/src/hedger.h), with an injected clock.
#include "hedger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>

namespace quiver::client::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Clock = Hedger::Clock;

TEST(HedgerTest, NodeThatOverranItsHedgeDelayIsSlowForAWhile) {
  Hedger h;
  const Clock::time_point t0{std::chrono::seconds(100)};
  EXPECT_THAT(h.Slow(t0), IsEmpty());
  h.NoteSlow(2, t0);
  EXPECT_THAT(h.Slow(t0), ElementsAre(2u));
  EXPECT_THAT(h.Slow(t0 + Hedger::kSlowFor - std::chrono::milliseconds(1)), ElementsAre(2u));
  EXPECT_THAT(h.Slow(t0 + Hedger::kSlowFor), IsEmpty());
}

TEST(HedgerTest, AnotherOverrunExtendsTheMark) {
  Hedger h;
  const Clock::time_point t0{std::chrono::seconds(100)};
  h.NoteSlow(2, t0);
  h.NoteSlow(3, t0 + std::chrono::milliseconds(100));
  h.NoteSlow(2, t0 + std::chrono::milliseconds(200));
  // Node 3 overran longest ago: it comes first.
  EXPECT_THAT(h.Slow(t0 + std::chrono::milliseconds(300)), ElementsAre(3u, 2u));
  // Node 3's mark ends 250 ms after its overrun, node 2's after its second.
  EXPECT_THAT(h.Slow(t0 + std::chrono::milliseconds(360)), ElementsAre(2u));
  EXPECT_THAT(h.Slow(t0 + std::chrono::milliseconds(450)), IsEmpty());
}

TEST(HedgerTest, SlowMarksLeaveTheHedgeDelayAndBudgetAlone) {
  Hedger h;
  for (int i = 0; i < 20; ++i) h.Record(1, std::chrono::microseconds(300));
  h.NoteSlow(1, Clock::now());
  EXPECT_EQ(h.HedgeAfter(1), std::chrono::microseconds(Hedger::kFloorUs));
  EXPECT_FALSE(h.TakeHedge());  // no call earned budget yet
  EXPECT_EQ(h.hedges(), 0u);
}

}  // namespace
}  // namespace quiver::client::internal
