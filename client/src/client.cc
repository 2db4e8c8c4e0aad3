#include "rangekv/client.h"

#include <atomic>
#include <exception>
#include <future>
#include <thread>

#include "client/src/cluster_view.h"
#include "client/src/router.h"
#include "common/asio.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/net/address.h"
#include "common/net/connection.h"
#include "common/protocol.h"
#include "common/zk/auth.h"

namespace rangekv {

using net::Clock;
using net::Connection;
using net::HostPort;
using net::PendingRequest;
using net::ResponseCallback;

namespace {

Status Unexpected(const proto::Response& r) {
  return Status(Code::kInternal,
                "unexpected response kind " + std::to_string(static_cast<int>(r.kind)));
}

proto::Consistency ToWire(ReadConsistency c) {
  return c == ReadConsistency::kStale ? proto::Consistency::kStale
                                      : proto::Consistency::kLinearizable;
}

proto::WriteOp ToWire(BatchOp op) {
  switch (op.kind) {
    case BatchOp::Kind::kPut: return proto::WriteOp::Put(std::move(op.key), std::move(op.value));
    case BatchOp::Kind::kDelete: return proto::WriteOp::Delete(std::move(op.key));
    case BatchOp::Kind::kCas:
      return proto::WriteOp::Cas(std::move(op.key), op.expected_version, std::move(op.value));
  }
  return proto::WriteOp::Delete(std::move(op.key));
}

// Reads may be resent once after a lost connection; writes never are.
int RetriesFor(proto::OpKind kind) {
  switch (kind) {
    case proto::OpKind::kGet: case proto::OpKind::kScan: case proto::OpKind::kPing: return 1;
    default: return 0;
  }
}

// Blocking call = async call + a wait for its one callback. The promise is
// shared so that the callback may still be inside set_value when the
// waiting thread returns.
template <typename T, typename Start>
T Await(Start&& start) {
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  start([promise](T result) { promise->set_value(std::move(result)); });
  return future.get();
}

Status ValidateOptions(const ClientOptions& options) {
  if (options.connections_per_node < 1 || options.io_threads < 1) {
    return Status(Code::kBadRequest, "connections_per_node and io_threads must be at least 1");
  }
  if (options.request_timeout.count() <= 0 || options.connect_timeout.count() <= 0) {
    return Status(Code::kBadRequest, "request_timeout and connect_timeout must be positive");
  }
  return Status::Ok();
}

// The TLS context of a client's connections; null for plaintext.
Result<std::shared_ptr<net::TlsContext>> LoadTls(const ClientOptions& o) {
  const net::TlsFiles files{o.tls_ca, o.tls_cert, o.tls_key};
  if (!files.enabled()) return std::shared_ptr<net::TlsContext>();
  return net::TlsContext::Load(files, net::TlsContext::Role::kClient);
}

}  // namespace

struct Client::Impl {
  // One io_context per I/O thread (each run by that thread alone), and the
  // connections spread over them: a connection's handlers need no strand.
  // target: the node of a ConnectNode client; nullopt for a cluster client
  // (its connections live in the Router, set right after construction).
  Impl(std::optional<HostPort> target, ClientOptions opts, std::shared_ptr<net::TlsContext> tls)
      : options(opts) {
    for (int i = 0; i < opts.io_threads; ++i) {
      ios.push_back(std::make_unique<asio::io_context>(1));
      work.push_back(asio::make_work_guard(*ios.back()));
    }
    net::ConnectionOptions copts;
    copts.connect_timeout = opts.connect_timeout;
    copts.tls = std::move(tls);
    for (int i = 0; target && i < opts.connections_per_node; ++i) {
      conns.push_back(std::make_unique<Connection>(
          *ios[i % ios.size()], *target, copts,
          [this](PendingRequest req) { Route(std::move(req)); }, this));
    }
    for (auto& io : ios) threads.emplace_back([this, io = io.get()] { RunIo(*io); });
  }

  ~Impl() {
    if (router) router->Shutdown();
    for (auto& c : conns) c->Shutdown();
    work.clear();
    for (auto& t : threads) t.join();
    router.reset();  // its connections need the io_contexts drained, not destroyed
  }

  void RunIo(asio::io_context& io) {
    // A throwing user callback must not kill an I/O thread silently.
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        LOG_ERROR("exception escaped a client callback: " << e.what());
      } catch (...) {
        LOG_ERROR("unknown exception escaped a client callback");
      }
    }
  }

  // Connects every connection; the first failure, or OK.
  Status ConnectAll() {
    // left and first_error are under mu (locals cannot be GUARDED_BY).
    Mutex mu;
    CondVar cv;
    size_t left = conns.size();
    Status first_error;
    for (auto& c : conns) {
      c->Connect([&](Status st) {
        MutexLock lock(mu);
        if (!st.ok() && first_error.ok()) first_error = st;
        if (--left == 0) cv.NotifyAll();
      });
    }
    MutexLock lock(mu);
    cv.Wait(lock, [&] { return left == 0; });
    return first_error;
  }

  // A request sent from a response callback stays on that callback's
  // connection (no thread hand-off; it joins the connection's next write).
  // Others go round-robin, preferring a connection that is up.
  Connection& Pick() {
    Connection* current = Connection::CurrentlyDispatching();
    if (current != nullptr && current->owner() == this && current->connected()) return *current;
    const size_t n = conns.size();
    const size_t start = rr.fetch_add(1, std::memory_order_relaxed) % n;
    for (size_t i = 0; i < n; ++i) {
      Connection& c = *conns[(start + i) % n];
      if (c.connected()) return c;
    }
    return *conns[start];
  }

  void Route(PendingRequest req) { Pick().Send(std::move(req)); }

  // Validates, encodes and sends req; done runs exactly once on an I/O thread.
  void Submit(proto::Request req, const CallOptions& o, ResponseCallback done) {
    Status st = proto::Validate(req);
    if (!st.ok()) {
      asio::post(*ios[0], [done = std::move(done), st] { done(st); });
      return;
    }
    PendingRequest p;
    p.id = next_id.fetch_add(1, std::memory_order_relaxed);
    req.id = p.id;
    p.timeout = o.timeout.value_or(options.request_timeout);
    p.deadline = Clock::now() + p.timeout;
    if (router) return router->Submit(std::move(req), Clock::now() + p.timeout, p.timeout,
                                      std::move(done));
    p.retries_left = RetriesFor(req.kind);
    proto::EncodeRequest(req, p.frame);
    p.done = std::move(done);
    Route(std::move(p));
  }

  void Write(proto::OpKind kind, proto::WriteOp op, const CallOptions& o, WriteCallback cb) {
    proto::Request req;
    req.kind = kind;
    req.ops.push_back(std::move(op));
    SubmitWrite(std::move(req), o, std::move(cb));
  }

  void SubmitWrite(proto::Request req, const CallOptions& o, WriteCallback cb) {
    Submit(std::move(req), o, [cb = std::move(cb)](Result<proto::Response> r) {
      if (!r.ok()) return cb(r.status());
      if (r->kind == proto::Response::Kind::kError) return cb(std::move(r->error));
      if (r->kind != proto::Response::Kind::kWritten) return cb(Unexpected(*r));
      cb(r->written_version);
    });
  }

  ClientOptions options;
  std::vector<std::unique_ptr<asio::io_context>> ios;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::unique_ptr<Connection>> conns;
  std::vector<std::thread> threads;
  std::atomic<uint64_t> next_id{1};
  std::atomic<size_t> rr{0};
  std::unique_ptr<client_internal::Router> router;  // cluster clients only
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::ConnectNode(std::string_view address,
                                                    ClientOptions options) {
  RANGEKV_ASSIGN_OR_RETURN(HostPort target, net::ParseHostPort(address));
  RANGEKV_RETURN_IF_ERROR(ValidateOptions(options));
  RANGEKV_ASSIGN_OR_RETURN(std::shared_ptr<net::TlsContext> tls, LoadTls(options));
  auto impl = std::make_unique<Impl>(std::move(target), options, std::move(tls));
  RANGEKV_RETURN_IF_ERROR(impl->ConnectAll());
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<std::unique_ptr<Client>> Client::Connect(std::string_view zk_connect,
                                                std::string_view cluster, ClientOptions options) {
  RANGEKV_RETURN_IF_ERROR(ValidateOptions(options));
  if (zk_connect.empty()) return Status(Code::kBadRequest, "empty ZooKeeper connect string");
  RANGEKV_ASSIGN_OR_RETURN(std::shared_ptr<net::TlsContext> tls, LoadTls(options));
  RANGEKV_ASSIGN_OR_RETURN(std::optional<zk::AuthFile> zk_auth,
                           zk::LoadAuthFileFlag(options.zk_auth_file));
  std::optional<zk::ZkAuth> auth;
  if (zk_auth) auth = zk_auth->self;
  // Blocking ZooKeeper work happens here, on the caller's thread.
  RANGEKV_ASSIGN_OR_RETURN(
      std::unique_ptr<client_internal::ClusterView> view,
      client_internal::ClusterView::Open(zk_connect, cluster, options.connect_timeout, auth));
  auto impl = std::make_unique<Impl>(std::nullopt, options, nullptr);
  std::vector<asio::io_context*> ios;
  for (auto& io : impl->ios) ios.push_back(io.get());
  impl->router = std::make_unique<client_internal::Router>(std::move(ios), std::move(view), options,
                                                           std::move(tls));
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

std::vector<NodeStatus> Client::Nodes() const {
  return impl_->router ? impl_->router->Nodes() : std::vector<NodeStatus>{};
}

std::vector<RangeStatus> Client::Ranges() const {
  return impl_->router ? impl_->router->Ranges() : std::vector<RangeStatus>{};
}

Result<RangeStatus> Client::Locate(std::string_view key) const {
  if (!impl_->router) {
    return Status(Code::kBadRequest, "Locate needs a cluster client (Client::Connect)");
  }
  return impl_->router->Locate(key);
}

const char* RangeHealthName(RangeHealth h) {
  return h == RangeHealth::kActive ? "active" : "unavailable";
}

// ---- async ----

void Client::GetAsync(std::string key, GetCallback cb, CallOptions o) {
  proto::Request req;
  req.kind = proto::OpKind::kGet;
  req.consistency = ToWire(o.consistency);
  req.ops.push_back(proto::WriteOp::Delete(std::move(key)));
  impl_->Submit(std::move(req), o, [cb = std::move(cb)](Result<proto::Response> r) {
    using Kind = proto::Response::Kind;
    if (!r.ok()) return cb(r.status());
    switch (r->kind) {
      case Kind::kError: return cb(std::move(r->error));
      case Kind::kNotFound: return cb(std::optional<VersionedValue>());
      case Kind::kFound:
        return cb(std::optional<VersionedValue>(
            VersionedValue{std::move(r->found.value), r->found.version}));
      default: return cb(Unexpected(*r));
    }
  });
}

void Client::PutAsync(std::string key, std::string value, WriteCallback cb, CallOptions o) {
  impl_->Write(proto::OpKind::kPut, proto::WriteOp::Put(std::move(key), std::move(value)), o,
               std::move(cb));
}

void Client::DeleteAsync(std::string key, WriteCallback cb, CallOptions o) {
  impl_->Write(proto::OpKind::kDelete, proto::WriteOp::Delete(std::move(key)), o, std::move(cb));
}

void Client::CasAsync(std::string key, uint64_t expected_version, std::string value,
                      WriteCallback cb, CallOptions o) {
  impl_->Write(proto::OpKind::kCas,
               proto::WriteOp::Cas(std::move(key), expected_version, std::move(value)), o,
               std::move(cb));
}

void Client::ScanAsync(std::string start, std::optional<std::string> end, uint32_t limit,
                       ScanCallback cb, CallOptions o) {
  proto::Request req;
  req.kind = proto::OpKind::kScan;
  req.consistency = ToWire(o.consistency);
  req.scan_start = std::move(start);
  req.scan_end = std::move(end);
  req.scan_limit = limit;
  auto on_done = [cb = std::move(cb)](Result<proto::Response> r) {
    if (!r.ok()) return cb(r.status());
    if (r->kind == proto::Response::Kind::kError) return cb(std::move(r->error));
    if (r->kind != proto::Response::Kind::kEntries) return cb(Unexpected(*r));
    ScanResult out;
    out.more = r->more;
    out.entries.reserve(r->entries.size());
    for (auto& e : r->entries) {
      out.entries.push_back(KeyValue{std::move(e.key), std::move(e.value), e.version});
    }
    cb(std::move(out));
  };
  if (impl_->router) {
    Status st = proto::Validate(req);
    if (!st.ok()) return asio::post(*impl_->ios[0], [on_done, st] { on_done(st); });
    const auto timeout = o.timeout.value_or(impl_->options.request_timeout);
    return impl_->router->Scan(std::move(req), Clock::now() + timeout, timeout,
                               std::move(on_done));
  }
  impl_->Submit(std::move(req), o, std::move(on_done));
}

void Client::BatchAsync(std::vector<BatchOp> ops, WriteCallback cb, CallOptions o) {
  proto::Request req;
  req.kind = proto::OpKind::kBatch;
  req.ops.reserve(ops.size());
  for (auto& op : ops) req.ops.push_back(ToWire(std::move(op)));
  impl_->SubmitWrite(std::move(req), o, std::move(cb));
}

// ---- blocking ----

Result<std::optional<VersionedValue>> Client::Get(std::string_view key, CallOptions o) {
  return Await<Result<std::optional<VersionedValue>>>(
      [&](GetCallback cb) { GetAsync(std::string(key), std::move(cb), o); });
}

Result<uint64_t> Client::Put(std::string_view key, std::string_view value, CallOptions o) {
  return Await<Result<uint64_t>>([&](WriteCallback cb) {
    PutAsync(std::string(key), std::string(value), std::move(cb), o);
  });
}

Result<uint64_t> Client::Delete(std::string_view key, CallOptions o) {
  return Await<Result<uint64_t>>(
      [&](WriteCallback cb) { DeleteAsync(std::string(key), std::move(cb), o); });
}

Result<uint64_t> Client::Cas(std::string_view key, uint64_t expected_version,
                             std::string_view value, CallOptions o) {
  return Await<Result<uint64_t>>([&](WriteCallback cb) {
    CasAsync(std::string(key), expected_version, std::string(value), std::move(cb), o);
  });
}

Result<ScanResult> Client::Scan(std::string_view start, std::optional<std::string_view> end,
                                uint32_t limit, CallOptions o) {
  std::optional<std::string> end_copy;
  if (end) end_copy.emplace(*end);
  return Await<Result<ScanResult>>([&](ScanCallback cb) {
    ScanAsync(std::string(start), std::move(end_copy), limit, std::move(cb), o);
  });
}

Result<uint64_t> Client::Batch(std::vector<BatchOp> ops, CallOptions o) {
  return Await<Result<uint64_t>>(
      [&](WriteCallback cb) { BatchAsync(std::move(ops), std::move(cb), o); });
}

Status Client::Ping(CallOptions o) {
  proto::Request req;
  req.kind = proto::OpKind::kPing;
  return Await<Status>([&](std::function<void(Status)> cb) {
    impl_->Submit(std::move(req), o, [cb = std::move(cb)](Result<proto::Response> r) {
      if (!r.ok()) return cb(r.status());
      if (r->kind == proto::Response::Kind::kError) return cb(std::move(r->error));
      if (r->kind != proto::Response::Kind::kPong) return cb(Unexpected(*r));
      cb(Status::Ok());
    });
  });
}

}  // namespace rangekv
