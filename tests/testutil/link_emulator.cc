// link_emulator — a userspace Ethernet switch between TAP devices that
// delays, jitters and drops frames per direction of each pair of ports: the
// links between test hosts (tests/testutil/host_net.h), where the kernel has
// no netem qdisc.
//
// Usage: link_emulator [--control FIFO]
// Commands come one per line on stdin, or from FIFO with --control (for a
// script whose every invocation writes a command and goes: writers come and
// go without an end of input); answers go to stdout.
//   add NAME                  create TAP device NAME (a new port; the caller
//                             moves it into a host's namespace and
//                             configures it) -> "added NAME"
//   delay A B MS JITTER_MS    frames from port A to port B wait MS +/-
//                             JITTER_MS (uniform), never overtaking an
//                             earlier frame of the same direction
//   delayall MS JITTER_MS     the same between every two ports there are
//   loss A B PERCENT          drop that share of the frames from A to B
//   clear                     no delay and no loss anywhere
// Every command but add is answered "done N" (N counts those commands from
// 1), an unknown or malformed one "error N: why"; add is answered "added
// NAME" or "error add: why". It exits when stdin closes or, with --control,
// on SIGTERM or SIGINT.
//
// Switching: the source MAC of every frame teaches the table its port; a
// frame to an unknown MAC or to a group address goes to every other port.
// A frame that cannot be written at once (the TAP's queue is full) is
// dropped, as a full link would.
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <queue>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Link {
  std::chrono::microseconds delay{0};
  std::chrono::microseconds jitter{0};
  double loss = 0;
  Clock::time_point last_release{};  // keeps one direction's frames in order
};

struct Pending {
  Clock::time_point release;
  uint64_t seq;  // ties keep arrival order
  size_t port;
  std::vector<char> frame;
  bool operator>(const Pending& o) const {
    return release != o.release ? release > o.release : seq > o.seq;
  }
};

class Switch {
 public:
  // The command's answer.
  std::string Command(const std::string& line);
  // Reads what every port has, forwards or queues it.
  void Drain(size_t port);
  // Writes every queued frame whose time has come; the time until the next
  // one (-1: none).
  int Flush();
  std::vector<pollfd> PollSet(int input) const;
  // Stops using a port whose device is gone; poll skips its -1, and frames
  // for it are dropped.
  void ClosePort(size_t port) {
    if (fds_[port] >= 0) ::close(fds_[port]);
    fds_[port] = -1;
  }

 private:
  bool AddPort(const std::string& name, std::string* why);
  size_t PortOf(const std::string& name) const;  // ports_.size(): unknown
  void Forward(size_t from, size_t to, const char* data, size_t n);

  std::vector<std::string> names_;
  std::vector<int> fds_;
  std::map<std::array<unsigned char, 6>, size_t> macs_;
  std::map<std::pair<size_t, size_t>, Link> links_;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<>> queue_;
  std::mt19937_64 rng_{std::random_device{}()};
  uint64_t seq_ = 0;
  uint64_t commands_ = 0;
};

bool Switch::AddPort(const std::string& name, std::string* why) {
  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *why = std::string("/dev/net/tun: ") + std::strerror(errno);
    return false;
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name.c_str());
  if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
    *why = "TUNSETIFF " + name + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  names_.push_back(name);
  fds_.push_back(fd);
  return true;
}

size_t Switch::PortOf(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (names_[i] == name) return i;
  }
  return names_.size();
}

std::string Switch::Command(const std::string& line) {
  std::istringstream in(line);
  std::string verb, a, b;
  in >> verb;
  if (verb == "add") {
    std::string why;
    in >> a;
    if (a.empty() || a.size() >= IFNAMSIZ || PortOf(a) < names_.size()) {
      return "error add: bad or taken name '" + a + "'";
    }
    return AddPort(a, &why) ? "added " + a : "error add: " + why;
  }
  const std::string n = std::to_string(++commands_);
  if (verb == "clear") {
    links_.clear();
    return "done " + n;
  }
  if (verb == "delayall") {
    long ms = -1, jitter = -1;
    in >> ms >> jitter;
    if (!in || ms < 0 || jitter < 0 || jitter > ms) return "error " + n + ": want MS JITTER_MS";
    for (size_t from = 0; from < names_.size(); ++from) {
      for (size_t to = 0; to < names_.size(); ++to) {
        if (from == to) continue;
        links_[{from, to}].delay = std::chrono::milliseconds(ms);
        links_[{from, to}].jitter = std::chrono::milliseconds(jitter);
      }
    }
    return "done " + n;
  }
  if (verb != "delay" && verb != "loss") return "error " + n + ": unknown command '" + verb + "'";
  in >> a >> b;
  const size_t from = PortOf(a), to = PortOf(b);
  if (from == names_.size() || to == names_.size() || from == to) {
    return "error " + n + ": unknown ports in '" + line + "'";
  }
  Link& link = links_[{from, to}];
  if (verb == "delay") {
    long ms = -1, jitter = -1;
    in >> ms >> jitter;
    if (!in || ms < 0 || jitter < 0 || jitter > ms) return "error " + n + ": want MS JITTER_MS";
    link.delay = std::chrono::milliseconds(ms);
    link.jitter = std::chrono::milliseconds(jitter);
    return "done " + n;
  }
  double pct = -1;  // loss
  in >> pct;
  if (!in || pct < 0 || pct > 100) return "error " + n + ": want PERCENT in 0..100";
  link.loss = pct / 100;
  return "done " + n;
}

void Switch::Forward(size_t from, size_t to, const char* data, size_t n) {
  auto it = links_.find({from, to});
  if (it == links_.end()) {
    (void)::write(fds_[to], data, n);  // a full queue drops it, as a link would
    return;
  }
  Link& link = it->second;
  if (link.loss > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < link.loss) return;
  auto d = link.delay;
  if (link.jitter.count() > 0) {
    d += std::chrono::microseconds(
        std::uniform_int_distribution<int64_t>(-link.jitter.count(), link.jitter.count())(rng_));
  }
  Clock::time_point release = std::max(Clock::now() + d, link.last_release);
  link.last_release = release;
  queue_.push(Pending{release, seq_++, to, std::vector<char>(data, data + n)});
}

void Switch::Drain(size_t port) {
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fds_[port], buf, sizeof buf);
    if (n < 14) return;  // EAGAIN, or not a whole Ethernet header
    std::array<unsigned char, 6> dst, src;
    std::memcpy(dst.data(), buf, 6);
    std::memcpy(src.data(), buf + 6, 6);
    macs_[src] = port;
    auto known = macs_.find(dst);
    const bool group = (dst[0] & 1) != 0;
    for (size_t to = 0; to < fds_.size(); ++to) {
      if (to == port) continue;
      if (!group && known != macs_.end() && known->second != to) continue;
      Forward(port, to, buf, static_cast<size_t>(n));
    }
  }
}

int Switch::Flush() {
  const Clock::time_point now = Clock::now();
  while (!queue_.empty() && queue_.top().release <= now) {
    const Pending& p = queue_.top();
    (void)::write(fds_[p.port], p.frame.data(), p.frame.size());
    queue_.pop();
  }
  if (queue_.empty()) return -1;
  auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(queue_.top().release - now);
  return static_cast<int>(wait.count()) + 1;
}

std::vector<pollfd> Switch::PollSet(int input) const {
  std::vector<pollfd> set{{input, POLLIN, 0}};
  for (int fd : fds_) set.push_back({fd, POLLIN, 0});
  return set;
}

}  // namespace

int main(int argc, char** argv) {
  int input = STDIN_FILENO;
  int stop = -1;  // poll ignores it
  if (argc == 3 && std::strcmp(argv[1], "--control") == 0) {
    // Read-write: the FIFO always has a writer (us), so it never ends.
    input = ::open(argv[2], O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (input < 0) {
      std::fprintf(stderr, "link_emulator: %s: %s\n", argv[2], std::strerror(errno));
      return 1;
    }
    // A descriptor rather than a handler: seen even when poll never has to
    // wait (busy ports).
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigprocmask(SIG_BLOCK, &signals, nullptr);
    stop = ::signalfd(-1, &signals, SFD_CLOEXEC);
    if (stop < 0) {
      std::fprintf(stderr, "link_emulator: signalfd: %s\n", std::strerror(errno));
      return 1;
    }
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: link_emulator [--control FIFO]\n");
    return 2;
  }
  Switch sw;
  std::string pending_input;
  while (true) {
    std::vector<pollfd> set = sw.PollSet(input);
    set.push_back({stop, POLLIN, 0});
    int timeout = sw.Flush();
    if (::poll(set.data(), set.size(), timeout) < 0 && errno != EINTR) return 1;
    if (set.back().revents & POLLIN) return 0;
    if (set[0].revents & (POLLIN | POLLHUP)) {
      char buf[4096];
      ssize_t n = ::read(input, buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EAGAIN)) return 0;  // the test is done with us
      if (n > 0) pending_input.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = pending_input.find('\n')) != std::string::npos) {
        std::string answer = sw.Command(pending_input.substr(0, nl)) + "\n";
        pending_input.erase(0, nl + 1);
        (void)::write(STDOUT_FILENO, answer.data(), answer.size());
      }
    }
    for (size_t i = 1; i + 1 < set.size(); ++i) {
      if (set[i].revents & POLLIN) {
        sw.Drain(i - 1);
      } else if (set[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
        sw.ClosePort(i - 1);  // its device is gone (its namespace deleted): never poll it again
      }
    }
  }
}
