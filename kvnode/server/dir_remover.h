// kvnode/server/dir_remover.h — deletes directories off the control path.
//
// Why: syncing the ranges directory and unlinking a range's files
// (segments and snapshots of up to tens of MiB each) took 60-300 ms under
// load, and Node::Apply, which holds the node's control lock while
// routing changes, must not wait for it. A directory
// handed here was renamed aside first (durably), so it is no store
// anyone opens; whatever a crash or Close leaves undeleted, the next
// sweep hands here again.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/exec.h"
#include "common/mutex.h"

namespace rangekv::kvnode {

class DirRemover {
 public:
  explicit DirRemover(Env& env);
  ~DirRemover();  // Close()
  DirRemover(const DirRemover&) = delete;
  DirRemover& operator=(const DirRemover&) = delete;

  // Deletes path (rm -r) soon, on the remover's worker, once its parent
  // directory is synced (so the rename that put it there is durable
  // before any of its files goes).
  void Remove(std::string path);
  // Stops the worker; paths not deleted yet stay.
  void Close();

 private:
  exec::NextStep Step();

  Env& env_;
  Mutex mu_;
  std::vector<std::string> paths_ GUARDED_BY(mu_);
  bool closing_ GUARDED_BY(mu_) = false;
  std::unique_ptr<exec::Worker> worker_;
};

}  // namespace rangekv::kvnode
