// The real kvnode binary on loopback, driven with raw frames.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <regex>
#include <string>
#include <vector>

#include "tests/kvnode/server/wire_client.h"
#include "tests/testutil/testutil.h"

namespace rangekv::testing {
namespace {

using proto::Response;
using Kind = proto::Response::Kind;

constexpr std::chrono::seconds kStartTimeout{20};

// The port in the log's "serving on 127.0.0.1:PORT" line, once it appears.
std::optional<int> ServingPort(const std::string& log_path) {
  static const std::regex kServing("serving on 127\\.0\\.0\\.1:([0-9]+)");
  std::smatch m;
  std::string log = ReadFile(log_path);
  if (!std::regex_search(log, m, kServing)) return std::nullopt;
  return std::stoi(m[1]);
}

// Starts a standalone kvnode on listen_port (0: any) with `extra` flags,
// its data in data_dir and its output in log_path, and waits until it
// serves: its port, or nullopt when it exited or never served.
std::optional<int> StartStandalone(Process& proc, const std::string& data_dir,
                                   const std::string& log_path, int listen_port,
                                   const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {BuildPath("kvnode/kvnode"),
                                   "--standalone",
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(listen_port),
                                   "--data",
                                   data_dir,
                                   "--io-threads",
                                   "2"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  proc = Process::Start(argv, log_path);
  std::optional<int> port;
  WaitFor([&] { return (port = ServingPort(log_path)) || !proc.running(); }, kStartTimeout);
  return port;
}

class KvnodeProcessTest : public ::testing::Test {
 protected:
  // Starts kvnode on listen_port (0: any) and waits until it serves.
  void Start(int listen_port) {
    log_ = tmp_.Sub("kvnode-" + std::to_string(++starts_) + ".log");
    std::optional<int> port = StartStandalone(proc_, tmp_.Sub("data"), log_, listen_port);
    ASSERT_TRUE(port.has_value()) << "kvnode did not serve: " << ReadFile(log_);
    if (listen_port != 0) {
      EXPECT_EQ(*port, listen_port);
    }
    port_ = *port;
  }
  void SetUp() override { Start(FreePort()); }
  void TearDown() override {
    if (proc_.running()) {
      EXPECT_EQ(proc_.Stop(), 0) << ReadFile(log_);
    }
  }
  WireClient Connect() {
    auto c = WireClient::Connect(port_);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(*c);
  }
  static bool Pings(WireClient& c, uint64_t id) {
    auto r = c.Call(PingRequest(id));
    return r.ok() && r->kind == Kind::kPong && r->id == id;
  }

  TempDir tmp_;
  Process proc_;
  std::string log_;
  int port_ = 0;
  int starts_ = 0;
};

TEST_F(KvnodeProcessTest, PutGetDeleteCasScanBatch) {
  WireClient c = Connect();
  auto put = c.Call(PutRequest(1, "k", "v"));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  ASSERT_EQ(put->kind, Kind::kWritten);
  auto get = c.Call(GetRequest(2, "k"));
  ASSERT_TRUE(get.ok());
  ASSERT_EQ(get->kind, Kind::kFound);
  EXPECT_EQ(get->found, (proto::Entry{"k", "v", put->written_version}));
  auto cas = c.Call(CasRequest(3, "k", put->written_version + 1, "x"));
  ASSERT_TRUE(cas.ok());
  EXPECT_EQ(cas->error.code(), Code::kCasFailed);
  auto batch =
      c.Call(BatchRequest(4, {proto::WriteOp::Put("a", "1"), proto::WriteOp::Delete("k")}));
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->kind, Kind::kWritten);
  auto scan = c.Call(ScanRequest(5, "", std::nullopt, 0));
  ASSERT_TRUE(scan.ok());
  ASSERT_EQ(scan->entries.size(), 1u);
  EXPECT_EQ(scan->entries[0].key, "a");
  auto gone = c.Call(DeleteRequest(6, "a"));
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->kind, Kind::kWritten);
}

TEST_F(KvnodeProcessTest, PipelinedRequestsMatchedById) {
  WireClient c = Connect();
  std::string burst;
  constexpr int kN = 500;
  for (int i = 0; i < kN; ++i) {
    proto::EncodeRequest(PutRequest(i + 1, "p" + std::to_string(i), std::to_string(i)), burst);
  }
  ASSERT_TRUE(c.SendRaw(burst).ok());
  std::map<uint64_t, uint64_t> version_by_id;
  for (int i = 0; i < kN; ++i) {
    auto r = c.Receive();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->kind, Kind::kWritten);
    version_by_id[r->id] = r->written_version;
  }
  ASSERT_EQ(version_by_id.size(), size_t{kN});
  burst.clear();
  for (int i = 0; i < kN; ++i)
    proto::EncodeRequest(GetRequest(i + 1, "p" + std::to_string(i)), burst);
  ASSERT_TRUE(c.SendRaw(burst).ok());
  for (int i = 0; i < kN; ++i) {
    auto r = c.Receive();
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->kind, Kind::kFound);
    EXPECT_EQ(r->found.value, std::to_string(r->id - 1));
    EXPECT_EQ(r->found.version, version_by_id[r->id]);
  }
}

TEST_F(KvnodeProcessTest, GarbageAndOversizeFramesCloseOnlyTheirConnection) {
  WireClient bystander = Connect();
  ASSERT_TRUE(Pings(bystander, 1));

  WireClient garbage = Connect();
  ASSERT_TRUE(garbage.SendRaw(std::string("\0\0\0\x10", 4) + std::string(16, '\xff')).ok());
  EXPECT_TRUE(garbage.WaitClosed());

  WireClient oversize = Connect();
  ASSERT_TRUE(oversize.SendRaw(std::string("\x7f\xff\xff\xf8", 4)).ok());
  EXPECT_TRUE(oversize.WaitClosed());

  EXPECT_TRUE(Pings(bystander, 2));
  WireClient fresh = Connect();
  EXPECT_TRUE(Pings(fresh, 3));
  std::string log = ReadFile(log_);
  EXPECT_NE(log.find("closing connection from 127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find("TOO_LARGE"), std::string::npos) << log;
}

TEST_F(KvnodeProcessTest, TooLargeValueIsAnErrorAndTheConnectionStays) {
  WireClient c = Connect();
  auto r = c.Call(PutRequest(9, "k", std::string(proto::Limits::kMaxValueBytes + 1, 'v')));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->kind, Kind::kError);
  EXPECT_EQ(r->error.code(), Code::kTooLarge);
  EXPECT_TRUE(Pings(c, 10));
  auto g = c.Call(GetRequest(11, "k"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->kind, Kind::kNotFound);
}

TEST_F(KvnodeProcessTest, SigtermExitsZeroAndDataSurvivesRestart) {
  {
    WireClient c = Connect();
    for (int i = 0; i < 20; ++i) {
      auto r = c.Call(PutRequest(i, "s" + std::to_string(i), "v" + std::to_string(i)));
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->kind, Kind::kWritten);
    }
  }
  EXPECT_EQ(proc_.Stop(), 0) << ReadFile(log_);
  Start(0);  // port 0: the log names the real port
  EXPECT_GT(port_, 0);
  WireClient c = Connect();
  for (int i = 0; i < 20; ++i) {
    auto r = c.Call(GetRequest(i, "s" + std::to_string(i)));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->kind, Kind::kFound) << i;
    EXPECT_EQ(r->found.value, "v" + std::to_string(i));
  }
}

TEST_F(KvnodeProcessTest, SigintWithWritesInFlightExitsZero) {
  WireClient c = Connect();
  std::string burst;
  for (int i = 0; i < 2000; ++i)
    proto::EncodeRequest(PutRequest(i, "f" + std::to_string(i), "v"), burst);
  ASSERT_TRUE(c.SendRaw(burst).ok());
  // Signal once the node is busy with the burst (its first answer is back).
  auto first = c.Receive();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->kind, Kind::kWritten);
  std::vector<uint64_t> acked = {first->id};
  proc_.Signal(SIGINT);
  EXPECT_EQ(proc_.Wait(std::chrono::seconds(20)), 0) << ReadFile(log_);
  // Every answer that arrived before the close is a successful write, and
  // every acknowledged write is there after a restart.
  while (true) {
    auto r = c.Receive(std::chrono::seconds(5));
    if (!r.ok()) break;
    EXPECT_EQ(r->kind, Kind::kWritten);
    acked.push_back(r->id);
  }
  Start(0);
  WireClient again = Connect();
  for (uint64_t id : acked) {
    auto r = again.Call(GetRequest(id, "f" + std::to_string(id)));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->kind, Kind::kFound) << "acknowledged write f" << id << " lost";
  }
  RecordProperty("acknowledged_before_sigint", static_cast<int>(acked.size()));
}

// A standalone kvnode serving TLS (the test PKI of scripts/make-test-certs)
// and WireClient over TLS: served with the client certificate, refused
// without one, in plaintext, or when it trusts another CA.
class KvnodeTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = OpensslUnavailable(); !why.empty()) GTEST_SKIP() << why;
    pki_ = tmp_.Sub("tls");
    std::string why = MakeTestCerts(pki_);
    ASSERT_EQ(why, "");
    log_ = tmp_.Sub("kvnode.log");
    std::optional<int> port =
        StartStandalone(proc_, tmp_.Sub("data"), log_, FreePort(),
                        {"--tls-ca", pki_ + "/ca.crt", "--tls-cert", pki_ + "/node.crt",
                         "--tls-key", pki_ + "/node.key"});
    ASSERT_TRUE(port.has_value()) << "kvnode did not serve: " << ReadFile(log_);
    ASSERT_TRUE(WaitFor(
        [&] { return ReadFile(log_).find("(TLS, mutual certificates)") != std::string::npos; },
        kStartTimeout))
        << ReadFile(log_);
    port_ = *port;
  }
  void TearDown() override {
    if (proc_.running()) {
      EXPECT_EQ(proc_.Stop(), 0) << ReadFile(log_);
    }
  }
  WireTls Files(const std::string& ca, const std::string& cert) const {
    if (cert.empty()) return {pki_ + "/" + ca, "", ""};
    return {pki_ + "/" + ca, pki_ + "/" + cert + ".crt", pki_ + "/" + cert + ".key"};
  }

  TempDir tmp_;
  std::string pki_;
  Process proc_;
  std::string log_;
  int port_ = 0;
};

TEST_F(KvnodeTlsTest, ClientCertificateIsServed) {
  const WireTls tls = Files("ca.crt", "client");
  auto c = WireClient::Connect("127.0.0.1", port_, WireClient::kDefaultTimeout, &tls);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto pong = c->Call(PingRequest(1));
  ASSERT_TRUE(pong.ok()) << pong.status().ToString() << "\n" << ReadFile(log_);
  EXPECT_EQ(pong->kind, Kind::kPong);
  EXPECT_EQ(pong->id, 1u);
  // A burst larger than the socket buffers: writes that must wait for the
  // node to read (WANT_WRITE), answers spread over many TLS records.
  std::string burst;
  constexpr int kN = 2000;
  for (int i = 0; i < kN; ++i) {
    proto::EncodeRequest(PutRequest(i + 10, "t" + std::to_string(i), std::string(1000, 'v')),
                         burst);
  }
  ASSERT_TRUE(c->SendRaw(burst).ok());
  for (int i = 0; i < kN; ++i) {
    auto r = c->Receive();
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    ASSERT_EQ(r->kind, Kind::kWritten);
  }
  auto get = c->Call(GetRequest(5, "t7"));
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  ASSERT_EQ(get->kind, Kind::kFound);
  EXPECT_EQ(get->found.value, std::string(1000, 'v'));
  // The half-close sends close_notify; the node then closes its side.
  c->ShutdownWrite();
  EXPECT_TRUE(c->WaitClosed());
}

TEST_F(KvnodeTlsTest, NoCertificateIsRefused) {
  const WireTls tls = Files("ca.crt", "");
  auto c = WireClient::Connect("127.0.0.1", port_, WireClient::kDefaultTimeout, &tls);
  if (!c.ok()) {  // TLS 1.2: refused within the handshake
    EXPECT_EQ(c.status().code(), Code::kUnavailable) << c.status().ToString();
    return;
  }
  // TLS 1.3: the node checks the client's certificate after the client's
  // side of the handshake, so the refusal is the first read.
  auto r = c->Call(PingRequest(1));
  EXPECT_FALSE(r.ok()) << "a client without a certificate was answered";
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  EXPECT_TRUE(WaitFor([&] { return ReadFile(log_).find("refused") != std::string::npos; },
                      std::chrono::seconds(5)))
      << ReadFile(log_);
}

TEST_F(KvnodeTlsTest, PlaintextIsAnsweredUnauthenticated) {
  auto c = WireClient::Connect(port_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto r = c->Call(PingRequest(1));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->kind, Kind::kError);
  EXPECT_EQ(r->error.code(), Code::kUnauthenticated) << r->error.ToString();
  EXPECT_TRUE(c->WaitClosed());
}

TEST_F(KvnodeTlsTest, ANodeCertificateOfAnotherCaIsNotTrusted) {
  const WireTls tls = Files("other-ca.crt", "client");
  auto c = WireClient::Connect("127.0.0.1", port_, WireClient::kDefaultTimeout, &tls);
  ASSERT_FALSE(c.ok()) << "the node's certificate verified against another CA";
  EXPECT_EQ(c.status().code(), Code::kUnavailable);
  EXPECT_NE(c.status().message().find("certificate verify failed"), std::string::npos)
      << c.status().ToString();
}

}  // namespace
}  // namespace rangekv::testing
