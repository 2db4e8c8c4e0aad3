// pingpong — the floor a request/response over loopback TCP cannot beat on
// this machine: one thread echoes, another sends a message and waits for
// it back, `count` times, and the round trips' percentiles are printed.
//
//   pingpong [--count 20000] [--size 64]
//
// Both ends use blocking sockets with TCP_NODELAY, as a request/response
// protocol would. scripts/bench-compare holds one client's sequential GETs
// against this (the target: p50 within 3x of the ping-pong's p50).
// Output ends with one line:
//   RESULT p50_us=... p99_us=... mean_us=... round_trips=...
// Exit status: 0, or 2 on bad usage or a socket error.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_args.h"
#include "bench/latency_histogram.h"

namespace rangekv::bench {
namespace {

bool Fail(const char* what) {
  std::fprintf(stderr, "pingpong: %s: %s\n", what, std::strerror(errno));
  return false;
}

bool SendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool RecvAll(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void NoDelay(int fd) {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// Echoes messages of `size` bytes until the peer closes.
void Echo(int listener, size_t size) {
  int fd = ::accept(listener, nullptr, nullptr);
  if (fd < 0) return;
  NoDelay(fd);
  std::vector<char> buf(size);
  while (RecvAll(fd, buf.data(), size) && SendAll(fd, buf.data(), size)) {
  }
  ::close(fd);
}

bool Run(uint64_t count, size_t size) {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) return Fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listener);
    return Fail("listening on 127.0.0.1");
  }
  std::thread echo(Echo, listener, size);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (!ok) Fail("connect");
  LatencyHistogram h;
  if (ok) {
    NoDelay(fd);
    std::vector<char> msg(size, 'p');
    for (uint64_t i = 0; i < count && ok; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      ok = SendAll(fd, msg.data(), size) && RecvAll(fd, msg.data(), size);
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::steady_clock::now() - t0);
      h.Record(static_cast<uint64_t>(ns.count()));
    }
    if (!ok) Fail("round trip");
  }
  if (fd >= 0) ::close(fd);                  // ends the echo thread's loop
  if (!ok) ::shutdown(listener, SHUT_RDWR);  // unblocks an accept never reached
  echo.join();
  ::close(listener);
  if (!ok) return false;
  std::printf("loopback TCP ping-pong, %zu-byte messages: p50 %.1f us  p99 %.1f us  mean %.1f us\n",
              size, h.Percentile(50) / 1000.0, h.Percentile(99) / 1000.0, h.mean() / 1000.0);
  std::printf("RESULT p50_us=%.1f p99_us=%.1f mean_us=%.1f round_trips=%" PRIu64 "\n",
              h.Percentile(50) / 1000.0, h.Percentile(99) / 1000.0, h.mean() / 1000.0, h.count());
  return true;
}

int Main(int argc, char** argv) {
  uint64_t count = 20000;
  size_t size = 64;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    bool ok = i + 1 < argc;
    if (ok && a == "--count")
      ok = ParsePositive(argv[++i], count);
    else if (ok && a == "--size")
      ok = ParsePositive(argv[++i], size) && size <= (1u << 20);
    else
      ok = false;
    if (!ok) {
      std::fprintf(stderr, "usage: pingpong [--count 20000] [--size 64]\n");
      return 2;
    }
  }
  return Run(count, size) ? 0 : 2;
}

}  // namespace
}  // namespace rangekv::bench

int main(int argc, char** argv) { return rangekv::bench::Main(argc, argv); }
