#include "common/zk/c_ops.h"

namespace rangekv::zk::internal {

ZnodeStat ToStat(const struct Stat& s) {
  ZnodeStat out;
  out.version = ZnodeVersion(s.version);
  out.cversion = s.cversion;
  out.czxid = s.czxid;
  out.mzxid = s.mzxid;
  out.pzxid = s.pzxid;
  out.ephemeral_owner = s.ephemeralOwner;
  out.data_length = s.dataLength;
  out.num_children = s.numChildren;
  out.ctime_ms = s.ctime;
  out.mtime_ms = s.mtime;
  return out;
}

int ToCMode(CreateMode mode) {
  switch (mode) {
    case CreateMode::kPersistent:
      return ZOO_PERSISTENT;
    case CreateMode::kEphemeral:
      return ZOO_EPHEMERAL;
    case CreateMode::kPersistentSequential:
      return ZOO_PERSISTENT_SEQUENTIAL;
    case CreateMode::kEphemeralSequential:
      return ZOO_EPHEMERAL_SEQUENTIAL;
  }
  return ZOO_PERSISTENT;
}

void OnString(int rc, const char* value, const void* data) {
  auto ctx = Own<Result<std::string>>(data);
  if (rc != ZOK) return ctx->sink(ZkStatus(rc, ctx->what));
  ctx->sink(std::string(value ? value : ""));
}

void OnVoid(int rc, const void* data) {
  auto ctx = Own<Status>(data);
  ctx->sink(ZkStatus(rc, ctx->what));
}

void OnSyncDone(int rc, const char*, const void* data) { OnVoid(rc, data); }

void OnData(int rc, const char* value, int len, const struct Stat* stat, const void* data) {
  auto ctx = Own<Result<std::optional<ZnodeData>>>(data);
  if (rc == ZNONODE) return ctx->sink(std::optional<ZnodeData>());
  if (rc != ZOK) return ctx->sink(ZkStatus(rc, ctx->what));
  ZnodeData d;
  if (value != nullptr && len > 0) d.data.assign(value, static_cast<size_t>(len));
  if (stat != nullptr) d.stat = ToStat(*stat);
  ctx->sink(std::optional<ZnodeData>(std::move(d)));
}

void OnSetStat(int rc, const struct Stat* stat, const void* data) {
  auto ctx = Own<Result<ZnodeStat>>(data);
  if (rc != ZOK) return ctx->sink(ZkStatus(rc, ctx->what));
  ctx->sink(stat ? ToStat(*stat) : ZnodeStat{});
}

void OnExistsStat(int rc, const struct Stat* stat, const void* data) {
  auto ctx = Own<Result<std::optional<ZnodeStat>>>(data);
  if (rc == ZNONODE) return ctx->sink(std::optional<ZnodeStat>());
  if (rc != ZOK) return ctx->sink(ZkStatus(rc, ctx->what));
  ctx->sink(std::optional<ZnodeStat>(stat ? ToStat(*stat) : ZnodeStat{}));
}

void OnStrings(int rc, const struct String_vector* strings, const void* data) {
  auto ctx = Own<Result<std::vector<std::string>>>(data);
  if (rc != ZOK) return ctx->sink(ZkStatus(rc, ctx->what));
  std::vector<std::string> out;
  for (int32_t i = 0; strings != nullptr && i < strings->count; ++i) {
    out.emplace_back(strings->data[i]);
  }
  ctx->sink(std::move(out));
}

namespace {

std::string OpName(const ZkOp& op) {
  switch (op.kind) {
    case ZkOp::Kind::kCreate:
      return "create " + op.path;
    case ZkOp::Kind::kDelete:
      return "delete " + op.path;
    case ZkOp::Kind::kSetData:
      return "set " + op.path;
    case ZkOp::Kind::kCheck:
      return "check " + op.path;
  }
  return op.path;
}

Status MultiFailure(int rc, const MultiCtx& m) {
  // The op whose own error equals the overall one failed; the others report
  // ZOK (rolled back) or ZRUNTIMEINCONSISTENCY (not attempted).
  for (size_t i = 0; i < m.results.size(); ++i) {
    if (m.results[i].err == rc) {
      Status st = ZkStatus(rc, OpName(m.ops[i]));
      return Status(st.code(), st.message() + " [multi op #" + std::to_string(i) + "]");
    }
  }
  return ZkStatus(rc, "multi of " + std::to_string(m.ops.size()) + " ops");
}

}  // namespace

void OnMulti(int rc, const void* data) {
  std::unique_ptr<MultiCtx> m(static_cast<MultiCtx*>(const_cast<void*>(data)));
  if (rc != ZOK) return m->sink(MultiFailure(rc, *m));
  std::vector<ZkOpResult> out(m->ops.size());
  for (size_t i = 0; i < m->ops.size(); ++i) {
    if (m->ops[i].kind == ZkOp::Kind::kCreate) out[i].created_path = m->path_bufs[i].data();
    if (m->ops[i].kind == ZkOp::Kind::kSetData) out[i].stat = ToStat(m->stats[i]);
  }
  m->sink(std::move(out));
}

void FillCOps(MultiCtx* m) {
  size_t n = m->ops.size();
  m->c_ops.resize(n);
  m->results.assign(n, zoo_op_result_t{});
  m->path_bufs.resize(n);
  m->stats.assign(n, ::Stat{});
  for (size_t i = 0; i < n; ++i) {
    const ZkOp& op = m->ops[i];
    zoo_op_t* c = &m->c_ops[i];
    int version = op.version.value();
    switch (op.kind) {
      case ZkOp::Kind::kCreate:
        // Room for the sequential suffix (10 digits) and the terminator.
        m->path_bufs[i].assign(op.path.size() + 16, '\0');
        zoo_create_op_init(c, op.path.c_str(), op.data.data(), static_cast<int>(op.data.size()),
                           m->acl_for(op.path), ToCMode(op.mode), m->path_bufs[i].data(),
                           static_cast<int>(m->path_bufs[i].size()));
        break;
      case ZkOp::Kind::kDelete:
        zoo_delete_op_init(c, op.path.c_str(), version);
        break;
      case ZkOp::Kind::kSetData:
        zoo_set_op_init(c, op.path.c_str(), op.data.data(), static_cast<int>(op.data.size()),
                        version, &m->stats[i]);
        break;
      case ZkOp::Kind::kCheck:
        zoo_check_op_init(c, op.path.c_str(), version);
        break;
    }
  }
}

}  // namespace rangekv::zk::internal
