// RpcFanout: many unary async calls in flight on one CompletionQueue, polled
// by the calling thread (no thread per call, no hand-off to another thread).
// Private to quiver::client.
//
// Thread-safety: one RpcFanout belongs to one thread.
#ifndef QUIVER_CLIENT_SRC_RPC_FANOUT_H_
#define QUIVER_CLIENT_SRC_RPC_FANOUT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>

namespace quiver::client::internal {

using Clock = std::chrono::steady_clock;

// gRPC takes system_clock or gpr_timespec deadlines; ours are steady_clock.
inline gpr_timespec GrpcDeadline(Clock::time_point tp) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(tp - Clock::now()).count();
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(ns, GPR_TIMESPAN));
}

template <typename Response>
class RpcFanout {
 public:
  // One call. `items` and `lookup_sizes` are the caller's bookkeeping: which
  // of its units of work travel in this call, and how they are grouped.
  struct Call {
    uint32_t node = 0;
    grpc::ClientContext ctx;
    Response response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<Response>> reader;
    std::vector<uint32_t> items;
    std::vector<uint32_t> lookup_views;  // reads: the view of each lookup
    std::vector<uint32_t> lookup_sizes;  // reads: items per lookup, in order
    bool done = false;
  };

  RpcFanout() = default;
  RpcFanout(const RpcFanout&) = delete;
  RpcFanout& operator=(const RpcFanout&) = delete;
  ~RpcFanout() {
    CancelAndDrain();
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  // A call whose context the caller configures (deadline) before Start.
  Call* NewCall(uint32_t node, Clock::time_point deadline) {
    calls_.push_back(std::make_unique<Call>());
    Call* c = calls_.back().get();
    c->node = node;
    c->ctx.set_deadline(GrpcDeadline(deadline));
    return c;
  }

  // `prepare(ctx, cq)` returns the stub's PrepareAsync<Method>(ctx, request, cq)
  // reader; the request is serialized by it, so it need not outlive this call.
  template <typename Prepare>
  void Start(Call* c, Prepare&& prepare) {
    c->reader = prepare(&c->ctx, &cq_);
    c->reader->StartCall();
    c->reader->Finish(&c->response, &c->status, c);
    ++outstanding_;
  }

  size_t outstanding() const { return outstanding_; }

  // The next finished call, or nullptr when `deadline` passed first.
  Call* Next(Clock::time_point deadline) {
    void* tag = nullptr;
    bool ok = false;
    if (cq_.AsyncNext(&tag, &ok, GrpcDeadline(deadline)) != grpc::CompletionQueue::GOT_EVENT) return nullptr;
    --outstanding_;
    Call* c = static_cast<Call*>(tag);
    c->done = true;
    return c;
  }

  // Cancels whatever is still in flight and waits for gRPC to hand it back
  // (prompt after TryCancel), so nothing outlives the fanout. Returns the
  // calls that were still in flight.
  std::vector<Call*> CancelAndDrain() {
    std::vector<Call*> cancelled;
    if (outstanding_ == 0) return cancelled;
    for (auto& c : calls_) {
      if (!c->done && c->reader) {
        c->ctx.TryCancel();
        cancelled.push_back(c.get());
      }
    }
    while (outstanding_ > 0) {
      void* tag = nullptr;
      bool ok = false;
      if (!cq_.Next(&tag, &ok)) break;
      --outstanding_;
      static_cast<Call*>(tag)->done = true;
    }
    return cancelled;
  }

 private:
  grpc::CompletionQueue cq_;
  std::vector<std::unique_ptr<Call>> calls_;
  size_t outstanding_ = 0;
};

}  // namespace quiver::client::internal

#endif  // QUIVER_CLIENT_SRC_RPC_FANOUT_H_
