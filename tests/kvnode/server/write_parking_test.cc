// WriteParking (kvnode/server/write_parking.h): parked writes resume on a
// wake, at their deadline, at once after a wake they missed, and at Close;
// the bounds refuse more.
#include "kvnode/server/write_parking.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "tests/testutil/testutil.h"

namespace rangekv::kvnode {
namespace {

using Clock = WriteParking::Clock;
using std::chrono::milliseconds;

// What each parked write was resumed with, in order.
class Outcomes {
 public:
  WriteParking::Resume For(int id) {
    return [this, id](bool expired) {
      std::lock_guard lock(mu_);
      got_.push_back({id, expired});
    };
  }
  std::vector<std::pair<int, bool>> got() {
    std::lock_guard lock(mu_);
    return got_;
  }
  bool WaitFor(size_t n) {
    return testing::WaitFor([&] { return got().size() >= n; }, std::chrono::seconds(10));
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<int, bool>> got_;
};

Clock::time_point Later() { return Clock::now() + std::chrono::seconds(30); }

TEST(WriteParkingTest, AWakeResumesEveryParkedWriteInOrder) {
  Outcomes out;  // outlives the parking, whose Close resumes what is left
  WriteParking parking(DefaultEnv());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(parking.Park(parking.wakes(), Later(), 10, out.For(i)));
  }
  EXPECT_EQ(parking.parked(), 3u);
  EXPECT_TRUE(out.got().empty());
  parking.Wake();
  ASSERT_TRUE(out.WaitFor(3));
  EXPECT_EQ(out.got(), (std::vector<std::pair<int, bool>>{{0, false}, {1, false}, {2, false}}));
  EXPECT_EQ(parking.parked(), 0u);
  EXPECT_EQ(parking.parked_total(), 3u);
}

TEST(WriteParkingTest, AWriteThatMissedAWakeResumesAtOnce) {
  Outcomes out;  // outlives the parking, whose Close resumes what is left
  WriteParking parking(DefaultEnv());
  const uint64_t seen = parking.wakes();
  parking.Wake();  // between the caller's routing and its Park
  ASSERT_TRUE(parking.Park(seen, Later(), 10, out.For(7)));
  ASSERT_TRUE(out.WaitFor(1));
  EXPECT_EQ(out.got(), (std::vector<std::pair<int, bool>>{{7, false}}));
}

TEST(WriteParkingTest, AWriteNobodyWakesExpiresAtItsDeadline) {
  Outcomes out;  // outlives the parking, whose Close resumes what is left
  WriteParking parking(DefaultEnv());
  const Clock::time_point start = Clock::now();
  ASSERT_TRUE(parking.Park(parking.wakes(), start + milliseconds(50), 10, out.For(1)));
  ASSERT_TRUE(parking.Park(parking.wakes(), Later(), 10, out.For(2)));
  ASSERT_TRUE(out.WaitFor(1));
  EXPECT_GE(Clock::now() - start, milliseconds(50));
  EXPECT_EQ(out.got(), (std::vector<std::pair<int, bool>>{{1, true}}));
  EXPECT_EQ(parking.parked(), 1u);  // the other one still waits
}

TEST(WriteParkingTest, BoundsRefuseMore) {
  Outcomes out;  // outlives the parking, whose Close resumes what is left
  WriteParking parking(DefaultEnv());
  EXPECT_FALSE(parking.Park(parking.wakes(), Later(), WriteParking::kMaxBytes + 1, out.For(1)));
  ASSERT_TRUE(parking.Park(parking.wakes(), Later(), WriteParking::kMaxBytes, out.For(2)));
  EXPECT_FALSE(parking.Park(parking.wakes(), Later(), 1, out.For(3)));
  EXPECT_EQ(parking.parked(), 1u);
  parking.Wake();  // frees the bytes
  ASSERT_TRUE(out.WaitFor(1));
  ASSERT_TRUE(testing::WaitFor([&] { return parking.parked() == 0; }, std::chrono::seconds(10)));
  EXPECT_TRUE(parking.Park(parking.wakes(), Later(), 1, out.For(4)));
}

TEST(WriteParkingTest, CloseExpiresEveryParkedWriteAndRefusesMore) {
  Outcomes out;  // outlives the parking, whose Close resumes what is left
  WriteParking parking(DefaultEnv());
  ASSERT_TRUE(parking.Park(parking.wakes(), Later(), 10, out.For(1)));
  ASSERT_TRUE(parking.Park(parking.wakes(), Later(), 10, out.For(2)));
  parking.Close();  // returns once they have resumed
  EXPECT_EQ(out.got(), (std::vector<std::pair<int, bool>>{{1, true}, {2, true}}));
  EXPECT_FALSE(parking.Park(parking.wakes(), Later(), 10, out.For(3)));
  parking.Wake();  // harmless
  EXPECT_EQ(out.got().size(), 2u);
}

}  // namespace
}  // namespace rangekv::kvnode
