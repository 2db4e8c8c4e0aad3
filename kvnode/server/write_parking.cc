#include "kvnode/server/write_parking.h"

#include <algorithm>
#include <utility>

namespace rangekv::kvnode {

WriteParking::WriteParking(Env& env) {
  worker_ = env.StartWorker("parking", [this] { return Step(); });
}

WriteParking::~WriteParking() { Close(); }

bool WriteParking::Park(uint64_t seen_wakes, Clock::time_point deadline, size_t bytes,
                        Resume resume) {
  {
    MutexLock lock(mu_);
    if (closing_ || parked_.size() >= kMaxWrites || bytes_ + bytes > kMaxBytes) return false;
    parked_.push_back(Entry{deadline, bytes, std::move(resume)});
    bytes_ += bytes;
    // Woken after the caller routed: what refused it may have ended.
    if (seen_wakes != wakes_.load()) woken_ = true;
  }
  parked_total_.fetch_add(1, std::memory_order_relaxed);
  worker_->Notify();  // a nearer deadline, or a missed wake
  return true;
}

void WriteParking::Wake() {
  {
    MutexLock lock(mu_);
    wakes_.fetch_add(1);
    if (parked_.empty()) return;
    woken_ = true;
  }
  worker_->Notify();
}

void WriteParking::Close() {
  {
    MutexLock lock(mu_);
    if (closing_) return;
    closing_ = true;
  }
  worker_->Notify();
  worker_->Join();
}

size_t WriteParking::parked() const {
  MutexLock lock(mu_);
  return parked_.size();
}

exec::NextStep WriteParking::Step() {
  std::vector<Entry> expired;
  std::vector<Entry> retry;
  bool exit = false;
  Clock::time_point next = Clock::time_point::max();
  {
    MutexLock lock(mu_);
    const Clock::time_point now = Clock::now();
    exit = closing_;
    const bool all = closing_ || woken_;
    woken_ = false;
    std::vector<Entry> keep;
    for (Entry& e : parked_) {
      if (closing_ || e.deadline <= now) {
        expired.push_back(std::move(e));
      } else if (all) {
        retry.push_back(std::move(e));
      } else {
        next = std::min(next, e.deadline);
        keep.push_back(std::move(e));
      }
    }
    parked_ = std::move(keep);
    bytes_ = 0;
    for (const Entry& e : parked_) bytes_ += e.bytes;
  }
  // In parking order: a client's pipelined writes to one range go on in
  // the order they arrived.
  for (Entry& e : expired) e.resume(true);
  for (Entry& e : retry) e.resume(false);
  if (exit) return exec::NextStep::Exit();
  if (!retry.empty()) return exec::NextStep::Again();  // they may have parked again
  return next == Clock::time_point::max() ? exec::NextStep::Idle() : exec::NextStep::At(next);
}

}  // namespace rangekv::kvnode
