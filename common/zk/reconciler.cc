#include "common/zk/reconciler.h"

#include <atomic>

#include "common/log.h"
#include "common/zk/callback_gate.h"

namespace rangekv::zk {

class Reconciler::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor ex, std::chrono::milliseconds period, ReconcileFn reconcile,
       EventObserver observer)
      : strand_(asio::make_strand(ex)),
        timer_(strand_),
        period_(period),
        reconcile_(std::move(reconcile)),
        observer_(std::move(observer)) {}

  template <typename F>
  void Post(F&& f) {
    asio::post(strand_,
               [self = shared_from_this(), f = std::forward<F>(f)]() mutable { f(*self); });
  }

  // On strand_.
  void OnEvent(const WatchEvent& ev) {
    gate_->Run([&] {
      if (observer_) observer_(ev);
    });
    switch (ev.type) {
      case WatchEventType::kResynced:
        ++triggers_.resyncs;
        break;
      case WatchEventType::kSessionExpired:
        ++triggers_.session_expiries;
        break;
      // Nothing changed yet; the kResynced that follows triggers the re-read.
      case WatchEventType::kDisconnected:
        return;
      default:
        ++triggers_.events;
        break;
    }
    Request();
  }

  void Start() {
    if (stopped_ || started_) return;
    started_ = true;
    ArmTimer();
  }

  void Stop() {
    stopped_ = true;
    timer_.cancel();
  }

  void RequestExplicit() {
    ++triggers_.explicit_requests;
    Request();
  }

  uint64_t runs() const { return runs_.load(); }
  std::shared_ptr<CallbackGate> gate() { return gate_; }

 private:
  void ArmTimer() {
    timer_.expires_after(period_);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped_) return;
      ++self->triggers_.timer_ticks;
      self->Request();
      self->ArmTimer();
    });
  }

  void Request() {
    if (stopped_) return;
    if (running_) {
      pending_ = true;
      return;
    }
    Run();
  }

  void Run() {
    running_ = true;
    pending_ = false;
    ReconcileTriggers triggers = triggers_;
    triggers_ = ReconcileTriggers{};
    // `done` may be called from any thread, and more than once by mistake:
    // only the first call counts, and it hops back onto the strand.
    auto once = std::make_shared<std::atomic<bool>>(false);
    Done done = [self = shared_from_this(), once] {
      if (once->exchange(true)) return;
      self->Post([](Impl& i) { i.Finished(); });
    };
    bool ran = gate_->Run([&] { reconcile_(triggers, done); });
    if (!ran) running_ = false;
  }

  void Finished() {
    running_ = false;
    ++runs_;
    if (pending_) Request();
  }

  asio::strand<asio::any_io_executor> strand_;
  asio::steady_timer timer_;
  const std::chrono::milliseconds period_;
  const ReconcileFn reconcile_;
  const EventObserver observer_;
  const std::shared_ptr<CallbackGate> gate_ = std::make_shared<CallbackGate>();
  // On strand_ only.
  bool started_ = false;
  bool stopped_ = false;
  bool running_ = false;
  bool pending_ = false;
  ReconcileTriggers triggers_;
  std::atomic<uint64_t> runs_{0};
};

Result<std::unique_ptr<Reconciler>> Reconciler::Create(asio::any_io_executor executor,
                                                       ReconcilerOptions options,
                                                       ReconcileFn reconcile,
                                                       EventObserver observer) {
  if (options.period.count() <= 0) {
    return Status(Code::kBadRequest, "zk reconciler: period must be positive");
  }
  if (!reconcile) return Status(Code::kBadRequest, "zk reconciler: no reconcile function");
  auto impl =
      std::make_shared<Impl>(executor, options.period, std::move(reconcile), std::move(observer));
  // The channel's callback runs on the channel's strand: hop to ours.
  auto on_event = [impl](const WatchEvent& ev) { impl->Post([ev](Impl& i) { i.OnEvent(ev); }); };
  RANGEKV_ASSIGN_OR_RETURN(std::unique_ptr<WatchChannel> channel,
                           WatchChannel::Create(executor, std::move(options.channel), on_event));
  return std::unique_ptr<Reconciler>(new Reconciler(std::move(impl), std::move(channel)));
}

Reconciler::Reconciler(std::shared_ptr<Impl> impl, std::unique_ptr<WatchChannel> channel)
    : impl_(std::move(impl)), channel_(std::move(channel)) {}

Reconciler::~Reconciler() { Stop(); }

void Reconciler::Start() {
  impl_->Post([](Impl& i) { i.Start(); });
  channel_->Start();
}

void Reconciler::Stop() {
  impl_->gate()->Close();
  channel_->Stop();
  impl_->Post([](Impl& i) { i.Stop(); });
}

void Reconciler::TriggerNow() {
  impl_->Post([](Impl& i) { i.RequestExplicit(); });
}

uint64_t Reconciler::runs() const { return impl_->runs(); }

}  // namespace rangekv::zk
