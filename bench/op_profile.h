// Self time per operator over a stretch of work, from LibTorch's Kineto profiler (the one
// torch.profiler drives in Python): bench_train_step --profile writes it in the form
// bench/reference/hf_step.py --profile writes from torch.profiler's key_averages(), so that
// bench/profile_ops.py can put the two sides' operators next to each other.
#pragma once

#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/csrc/autograd/profiler_kineto.h>

namespace bireco::bench {

class OpProfile {
 public:
  OpProfile() {
    using namespace torch::profiler::impl;
    const ProfilerConfig config(ProfilerState::KINETO);
    const std::set<ActivityType> cpu{ActivityType::CPU};
    torch::autograd::profiler::prepareProfiler(config, cpu);
    torch::autograd::profiler::enableProfiler(config, cpu);
  }
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;

  // Stops the profiler and writes {"impl", "step_s", "ops": [{"name", "self_us", "calls"}]}.
  // Self time is an event's duration less that of the events nested directly inside it on
  // the same thread, as key_averages() computes it.
  void write(const std::string& path, double step_s) {
    const auto result = torch::autograd::profiler::disableProfiler();
    struct Span {
      uint64_t start, end, thread;
      std::string name;
    };
    std::vector<Span> spans;
    for (const auto& e : result->events())
      if (e.deviceType() == c10::DeviceType::CPU && !e.isAsync())
        spans.push_back({e.startNs(), e.startNs() + e.durationNs(), e.startThreadId(), e.name()});
    // Per thread, by start (the longer first at equal starts): a stack of the open spans
    // gives each span its parent, whose self time loses the child's duration.
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
      return a.thread != b.thread ? a.thread < b.thread : a.start != b.start ? a.start < b.start : a.end > b.end;
    });
    std::map<std::string, std::pair<double, int64_t>> ops;  // name: self ns, calls
    std::vector<const Span*> open;
    for (const auto& s : spans) {
      while (!open.empty() && (open.back()->thread != s.thread || open.back()->end <= s.start)) open.pop_back();
      auto& op = ops[s.name];
      op.first += static_cast<double>(s.end - s.start);
      op.second += 1;
      if (!open.empty()) ops[open.back()->name].first -= static_cast<double>(std::min(s.end, open.back()->end) - s.start);
      open.push_back(&s);
    }
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& [name, op] : ops)
      rows.push_back({{"name", name}, {"self_us", op.first / 1000.0}, {"calls", op.second}});
    std::ofstream(path) << nlohmann::json{{"impl", "bireco"}, {"step_s", step_s}, {"ops", rows}}.dump() << "\n";
  }
};

}  // namespace bireco::bench
