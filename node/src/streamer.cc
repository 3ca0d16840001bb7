#include "quiver/node/streamer.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "quiver/node/metrics.h"
#include "thread_priority.h"

namespace quiver::node {

TokenBucket::TokenBucket(double bytes_per_s, double burst_bytes, Clock clock)
    : rate_(bytes_per_s),
      burst_(burst_bytes),
      balance_(burst_bytes),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::steady_clock::now(); })),
      last_(clock_()) {}

void TokenBucket::Refill() {
  const auto now = clock_();
  if (now > last_) {
    balance_ = std::min(burst_, balance_ + rate_ * std::chrono::duration<double>(now - last_).count());
  }
  last_ = std::max(last_, now);
}

void TokenBucket::Consume(uint64_t bytes) {
  if (rate_ <= 0) return;
  Refill();
  balance_ -= static_cast<double>(bytes);
}

std::chrono::nanoseconds TokenBucket::Delay() {
  if (rate_ <= 0) return std::chrono::nanoseconds(0);
  Refill();
  if (balance_ >= 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<int64_t>(-balance_ / rate_ * 1e9) + 1);
}

struct Streamer::Task {
  quiver::v1::StreamTask spec;
  std::atomic<bool> cancelled{false};
  // Guarded by mu_:
  bool running = false;
  bool done = false;
  uint64_t rows = 0;
  uint64_t bytes = 0;
  std::string error;
  std::chrono::steady_clock::time_point not_before{};
  std::chrono::milliseconds backoff{0};
  // Progress; only the one runner (running == true) touches it.
  bool views_known = false;
  std::vector<std::string> views;
  size_t view_index = 0;
  std::string after;  // resume after this row key of views[view_index]
};

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

}  // namespace

Streamer::Streamer(StreamerOptions options)
    : options_(std::move(options)),
      bucket_(options_.mb_per_s * kMiB,
              // A second of transfer, and at least two pages, may be banked.
              std::max<double>(options_.mb_per_s * kMiB, 2.0 * options_.page_bytes),
              options_.clock) {}

Streamer::~Streamer() { Stop(); }

void Streamer::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!threads_.empty() || stopping_) return;
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] { Loop(); });
  }
}

void Streamer::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& [id, task] : tasks_) task->cancelled.store(true);
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (std::thread& t : threads) t.join();
}

void Streamer::SetTasks(std::span<const quiver::v1::StreamTask> tasks) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<uint64_t, std::shared_ptr<Task>> next;
    for (const quiver::v1::StreamTask& spec : tasks) {
      if (next.contains(spec.move_id())) continue;  // listed twice: the first counts
      auto it = tasks_.find(spec.move_id());
      if (it != tasks_.end() && it->second->spec.attempt() >= spec.attempt()) {
        next.emplace(spec.move_id(), it->second);
        continue;
      }
      if (it != tasks_.end()) {
        it->second->cancelled.store(true);
        spdlog::info("stream of move {} (partition {}): attempt {} replaces {}", spec.move_id(),
                     spec.partition(), spec.attempt(), it->second->spec.attempt());
      } else {
        spdlog::info("stream of move {}: partition {} from node {} ({}), attempt {}",
                     spec.move_id(), spec.partition(), spec.source(), spec.source_address(),
                     spec.attempt());
      }
      auto task = std::make_shared<Task>();
      task->spec = spec;
      next.emplace(spec.move_id(), std::move(task));
    }
    for (auto& [id, task] : tasks_) {
      if (!next.contains(id)) {
        task->cancelled.store(true);
        if (!task->done) spdlog::info("stream of move {} dropped (no longer listed)", id);
      }
    }
    tasks_ = std::move(next);
    UpdateGauge();
  }
  cv_.notify_all();
}

std::vector<quiver::v1::StreamReport> Streamer::Reports() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<quiver::v1::StreamReport> reports;
  reports.reserve(tasks_.size());
  for (const auto& [id, task] : tasks_) {
    quiver::v1::StreamReport& r = reports.emplace_back();
    r.set_move_id(id);
    r.set_attempt(task->spec.attempt());
    r.set_done(task->done);
    r.set_rows(task->rows);
    r.set_bytes(task->bytes);
    r.set_error(task->error);
  }
  return reports;
}

void Streamer::UpdateGauge() {
  if (options_.metrics == nullptr) return;
  double running = 0;
  for (const auto& [id, task] : tasks_) running += task->done ? 0 : 1;
  options_.metrics->streams_running->Set(running);
}

bool Streamer::Throttle(const Task& task) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (stopping_ || task.cancelled.load()) return false;
    const std::chrono::nanoseconds delay = bucket_.Delay();
    if (delay.count() <= 0) return true;
    cv_.wait_for(lock, delay);
  }
}

absl::Status Streamer::Run(Task& task) {
  const quiver::v1::StreamTask& spec = task.spec;
  if (!task.views_known) {
    std::shared_ptr<const client::RegistryIndex> registry =
        options_.registry ? options_.registry() : nullptr;
    if (registry == nullptr) return absl::UnavailableError("the node has no registry yet");
    for (const auto& fv : registry->registry().feature_views()) {
      if (fv.online()) task.views.push_back(fv.name());
    }
    std::sort(task.views.begin(), task.views.end());
    task.views_known = true;
  }
  std::vector<storage::RawRow> rows;
  while (task.view_index < task.views.size()) {
    if (!Throttle(task)) return absl::CancelledError("stream cancelled");
    const std::string& view = task.views[task.view_index];
    quiver::v1::ScanPartitionsRequest request;
    request.set_view(view);
    request.set_partition_begin(spec.partition());
    request.set_partition_end(spec.partition() + 1);
    request.set_after(task.after);
    request.set_max_bytes(options_.page_bytes);
    request.set_epoch(options_.epoch());
    absl::StatusOr<quiver::v1::ScanPartitionsResponse> page =
        options_.scan(spec.source_address(), request);
    if (!page.ok()) {
      if (page.status().code() == absl::StatusCode::kAborted && options_.refresh_map) {
        options_.refresh_map();
      }
      return absl::Status(page.status().code(),
                          absl::StrCat("view ", view, " of partition ", spec.partition(),
                                       " from node ", spec.source(), ": ",
                                       page.status().message()));
    }
    rows.clear();
    rows.reserve(page->rows_size());
    uint64_t bytes = 0;
    for (quiver::v1::StoredRow& row : *page->mutable_rows()) {
      bytes += row.key().size() + row.value().size();
      rows.push_back({std::move(*row.mutable_key()), std::move(*row.mutable_value())});
    }
    if (task.cancelled.load()) return absl::CancelledError("stream cancelled");
    if (absl::Status s = options_.merge(view, spec.partition(), rows); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("merging view ", view, " of partition ",
                                                 spec.partition(), ": ", s.message()));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      bucket_.Consume(bytes);
      task.rows += rows.size();
      task.bytes += bytes;
    }
    if (options_.metrics != nullptr) {
      options_.metrics->streamed_rows->Increment(static_cast<double>(rows.size()));
      options_.metrics->streamed_bytes->Increment(static_cast<double>(bytes));
    }
    if (page->done() || rows.empty()) {
      ++task.view_index;
      task.after.clear();
    } else {
      task.after = rows.back().key;
    }
  }
  return absl::OkStatus();
}

void Streamer::Finish(Task& task, const absl::Status& status) {
  task.running = false;
  if (status.ok()) {
    task.done = true;
    task.error.clear();
    task.backoff = std::chrono::milliseconds(0);
    if (options_.metrics != nullptr) options_.metrics->streams_done->Increment();
    spdlog::info("stream of move {} (partition {}, attempt {}) done: {} rows, {} bytes",
                 task.spec.move_id(), task.spec.partition(), task.spec.attempt(), task.rows,
                 task.bytes);
  } else if (!task.cancelled.load()) {
    task.error = status.ToString();
    task.backoff = task.backoff.count() == 0
                       ? options_.min_backoff
                       : std::min(task.backoff * 2, options_.max_backoff);
    task.not_before = std::chrono::steady_clock::now() + task.backoff;
    spdlog::warn("stream of move {} (attempt {}): {}; retrying from the last key in {} ms",
                 task.spec.move_id(), task.spec.attempt(), task.error, task.backoff.count());
  }
  UpdateGauge();
}

void Streamer::RunPending() {
  std::vector<std::shared_ptr<Task>> pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, task] : tasks_) {
      if (!task->done && !task->running && !task->cancelled.load()) {
        task->running = true;
        pending.push_back(task);
      }
    }
  }
  for (const std::shared_ptr<Task>& task : pending) {
    const absl::Status status = Run(*task);
    std::lock_guard<std::mutex> lock(mu_);
    Finish(*task, status);
  }
}

void Streamer::Loop() {
  NameThisThread("quiver-stream");
  NiceThisThread(options_.nice, "streamer");
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    std::shared_ptr<Task> next;
    auto wake = std::chrono::steady_clock::time_point::max();
    for (auto& [id, task] : tasks_) {
      if (task->done || task->running || task->cancelled.load()) continue;
      if (task->not_before <= now) {
        next = task;
        break;
      }
      wake = std::min(wake, task->not_before);
    }
    if (next == nullptr) {
      if (wake == std::chrono::steady_clock::time_point::max()) {
        cv_.wait(lock);
      } else {
        cv_.wait_until(lock, wake);
      }
      continue;
    }
    next->running = true;
    lock.unlock();
    const absl::Status status = Run(*next);
    lock.lock();
    Finish(*next, status);
  }
}

}  // namespace quiver::node
