#include "kvnode/server/dir_remover.h"

#include <chrono>
#include <set>
#include <utility>

#include "common/fs.h"
#include "common/log.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

DirRemover::DirRemover(Env& env) : env_(env) {
  worker_ = env.StartWorker("dir-remover", [this] { return Step(); });
}

DirRemover::~DirRemover() { Close(); }

void DirRemover::Remove(std::string path) {
  {
    MutexLock lock(mu_);
    if (closing_) return;
    paths_.push_back(std::move(path));
  }
  worker_->Notify();
}

void DirRemover::Close() {
  {
    MutexLock lock(mu_);
    if (closing_) return;
    closing_ = true;
  }
  worker_->Notify();
  worker_->Join();
}

exec::NextStep DirRemover::Step() {
  std::vector<std::string> paths;
  {
    MutexLock lock(mu_);
    if (closing_) return exec::NextStep::Exit();
    paths.swap(paths_);
  }
  if (paths.empty()) return exec::NextStep::Idle();
  std::set<std::string> parents;
  for (const std::string& p : paths) parents.insert(fs::DirName(p));
  for (const std::string& dir : parents) {
    // Not durable, the rename could come undone after the files went.
    if (Status st = env_.fs().SyncDir(dir); !st.ok()) {
      LOG_WARN("syncing " << dir << ": " << st.ToString() << "; deleting later");
      MutexLock lock(mu_);
      paths_.insert(paths_.end(), paths.begin(), paths.end());
      return exec::NextStep::At(MonoClock::now() + std::chrono::seconds(1));
    }
  }
  for (const std::string& p : paths) {
    if (Status st = env_.fs().RemoveAll(p); !st.ok()) {
      LOG_WARN("deleting " << p << ": " << st.ToString());
    }
  }
  return exec::NextStep::Again();
}

}  // namespace rangekv::kvnode
