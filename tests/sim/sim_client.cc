#include "tests/sim/sim_client.h"

#include <algorithm>

#include "common/log.h"

namespace rangekv::sim {
namespace {

constexpr Nanos kOpDeadline = 4 * kSecond;
constexpr Nanos kAttemptTimeout = 1 * kSecond;
constexpr Nanos kMapPeriod = 500 * kMilli;

}  // namespace

struct SimClient::Op {
  size_t index = 0;  // in history_
  proto::Request req;
  Nanos deadline = 0;
  Nanos backoff = 10 * kMilli;
  std::function<void(bool)> done;  // Read's
  bool write() const { return req.kind != proto::OpKind::kGet; }
};

SimClient::SimClient(Cluster& cluster, int id, std::vector<std::string> keys,
                     lincheck::History& history)
    : c_(cluster),
      id_(id),
      host_("c" + std::to_string(id)),
      keys_(std::move(keys)),
      history_(history),
      process_(std::make_shared<Process>(Process{"c" + std::to_string(id)})) {
  zk_ = std::make_unique<ZkClient>(
      c_.world, c_.zk, process_, c_.params.session_timeout,
      [this] { return c_.net.ZkReachable(host_); }, [this] { RefreshMap(); });
  map_ = std::make_shared<cluster::ClusterMap>(c_.MapNow());
  MapLoop();
}

void SimClient::MapLoop() {
  RefreshMap();
  c_.world.After(kMapPeriod, process_, [this] { MapLoop(); });
}

SimClient::~SimClient() { process_->alive = false; }

void SimClient::RefreshMap() {
  if (reading_map_) return;
  reading_map_ = true;
  auto out = std::make_shared<cluster::ClusterMap>();
  const cluster::Paths paths = c_.paths;
  zk_->Call(
      [out, paths](ZkSim& s, SessionId sid) {
        ZkReply r = s.Get(sid, paths.root());
        if (r.status.ok()) *out = MapFromZnodes(paths, s.znodes());
        return r;
      },
      [this, out](ZkReply r) {
        reading_map_ = false;
        if (r.status.ok()) map_ = out;
        if (zk_->expired()) zk_->NewSession();
      });
}

void SimClient::Run(Nanos until) {
  until_ = until;
  if (!busy_) NextOp();
}

void SimClient::NextOp() {
  if (c_.world.now() >= until_) return;
  const std::string& key =
      keys_[static_cast<size_t>(c_.world.Uniform(0, static_cast<int64_t>(keys_.size()) - 1))];
  auto op = std::make_shared<Op>();
  op->deadline = c_.world.now() + kOpDeadline;
  lincheck::Operation rec;
  rec.client = static_cast<uint64_t>(id_);
  rec.key = key;
  rec.invoke_ns = c_.world.now();
  const int64_t dice = c_.world.Uniform(0, 99);
  const std::string value = host_ + "." + std::to_string(++next_value_);
  if (dice < 40) {
    rec.kind = lincheck::OpKind::kGet;
    op->req.kind = proto::OpKind::kGet;
    op->req.ops = {proto::WriteOp::Put(key, "")};
  } else if (dice < 70) {
    rec.kind = lincheck::OpKind::kPut;
    rec.value = value;
    op->req.kind = proto::OpKind::kPut;
    op->req.ops = {proto::WriteOp::Put(key, value)};
  } else if (dice < 90) {
    // Mostly the version last seen for the key by anyone, sometimes 0.
    uint64_t expected = 0;
    for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
      if (it->key == key && it->outcome.completion == lincheck::Completion::kOk &&
          it->outcome.version != 0) {
        expected = it->outcome.version;
        break;
      }
    }
    if (c_.world.Chance(0.2)) expected = 0;
    rec.kind = lincheck::OpKind::kCas;
    rec.value = value;
    rec.expected_version = expected;
    op->req.kind = proto::OpKind::kCas;
    op->req.ops = {proto::WriteOp::Cas(key, expected, value)};
  } else {
    rec.kind = lincheck::OpKind::kDelete;
    op->req.kind = proto::OpKind::kDelete;
    op->req.ops = {proto::WriteOp::Delete(key)};
  }
  op->index = history_.size();
  history_.push_back(std::move(rec));
  busy_ = true;
  ++ops_;
  Attempt(op);
}

void SimClient::Read(const std::string& key, Nanos deadline, std::function<void(bool)> done) {
  auto op = std::make_shared<Op>();
  op->deadline = deadline;
  op->done = std::move(done);
  op->req.kind = proto::OpKind::kGet;
  op->req.ops = {proto::WriteOp::Put(key, "")};
  lincheck::Operation rec;
  rec.client = static_cast<uint64_t>(id_);
  rec.key = key;
  rec.kind = lincheck::OpKind::kGet;
  rec.invoke_ns = c_.world.now();
  op->index = history_.size();
  history_.push_back(std::move(rec));
  busy_ = true;
  Attempt(op);
}

void SimClient::Attempt(std::shared_ptr<Op> op) {
  const Nanos now = c_.world.now();
  if (now >= op->deadline) {
    // Every attempt so far failed before reaching a store.
    return Finish(op, lincheck::Outcome::Failed());
  }
  const std::string& key = op->req.ops.front().key;
  const cluster::RangeInfo* r = map_->Locate(key);
  const cluster::NodeInfo* owner = r && r->owner ? map_->Node(*r->owner) : nullptr;
  if (owner == nullptr) {
    RefreshMap();
    return Retry(op);
  }
  op->req.range = r->id;
  op->req.epoch = r->epoch;
  op->req.id = next_request_++;
  const std::string address = owner->address;
  c_.net.Call(process_, host_, address, op->req, std::min(kAttemptTimeout, op->deadline - now),
              [this, op, address](Result<proto::Response> resp) {
                OnAnswer(op, std::move(resp), 0, address);
              });
}

void SimClient::OnAnswer(std::shared_ptr<Op> op, Result<proto::Response> r, int hops,
                         const std::string& address) {
  LOG_DEBUG(host_ << ": " << static_cast<int>(op->req.kind) << " #" << op->index << " at "
                  << address << ": "
                  << (!r.ok() ? r.status().ToString()
                              : r->kind == proto::Response::Kind::kError ? r->error.ToString()
                                                                          : std::string("ok")));
  if (!r.ok()) {
    const bool refused = r.status().message() == "connection refused";
    if (op->write() && !refused) return Finish(op, lincheck::Outcome::Indeterminate());
    RefreshMap();
    return Retry(op);
  }
  const proto::Response& resp = *r;
  switch (resp.kind) {
    case proto::Response::Kind::kFound:
      return Finish(op, lincheck::Outcome::GetFound(resp.found.value, resp.found.version));
    case proto::Response::Kind::kNotFound:
      return Finish(op, lincheck::Outcome::GetNotFound());
    case proto::Response::Kind::kWritten:
      return Finish(op, lincheck::Outcome::Written(resp.written_version));
    case proto::Response::Kind::kError:
      break;
    default:
      return Finish(op, op->write() ? lincheck::Outcome::Indeterminate()
                                    : lincheck::Outcome::Failed());
  }
  switch (resp.error.code()) {
    case Code::kNotOwner:
      if (resp.hint && !resp.hint->address.empty() && hops < 3 &&
          resp.hint->address != address) {
        proto::Request again = op->req;
        again.range = resp.hint->range;
        again.epoch = resp.hint->epoch;
        again.id = next_request_++;
        const std::string to = resp.hint->address;
        const Nanos left = op->deadline - c_.world.now();
        if (left <= 0) return Finish(op, lincheck::Outcome::Failed());
        c_.net.Call(process_, host_, to, again, std::min(kAttemptTimeout, left),
                    [this, op, hops, to](Result<proto::Response> next) {
                      OnAnswer(op, std::move(next), hops + 1, to);
                    });
        return;
      }
      [[fallthrough]];
    case Code::kStaleEpoch:
    case Code::kRangeUnavailable:
    case Code::kNotEnoughReplicas:
      RefreshMap();
      return Retry(op);
    case Code::kCasFailed:
      return Finish(op, lincheck::Outcome::CasFailed());
    case Code::kUnavailable:
    case Code::kTimeout:
      if (op->write()) return Finish(op, lincheck::Outcome::Indeterminate());
      RefreshMap();
      return Retry(op);
    default:
      // The contract: any other error means nothing was written.
      return Finish(op, lincheck::Outcome::Failed());
  }
}

void SimClient::Retry(std::shared_ptr<Op> op) {
  const Nanos delay = op->backoff + c_.world.Uniform(0, op->backoff);
  op->backoff = std::min<Nanos>(op->backoff * 2, 200 * kMilli);
  c_.world.After(delay, process_, [this, op] { Attempt(op); });
}

void SimClient::Finish(std::shared_ptr<Op> op, lincheck::Outcome outcome) {
  lincheck::Operation& rec = history_[op->index];
  rec.return_ns = c_.world.now();
  const bool ok = outcome.completion == lincheck::Completion::kOk;
  rec.outcome = std::move(outcome);
  busy_ = false;
  if (op->done) return op->done(ok);
  NextOp();
}

}  // namespace rangekv::sim
