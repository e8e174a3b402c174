// The one place that knows which LibTorch bireco is built against: the one inside the pip
// `torch` wheel (2.x, CUDA-enabled; the same binary runs on CPU). Nothing else tests
// TORCH_VERSION_*.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

namespace bireco::compat {

// The oldest LibTorch bireco builds against (CMakeLists.txt asks find_package for it too):
// 2.7 is the first release whose pip wheels use the C++11 std::string ABI that Debian's
// spdlog, yaml-cpp and GoogleTest are built with; it also has SDPA's enable_gqa (2.5) and the
// per-device autocast API (2.4) used below.
static_assert(TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 7),
              "bireco needs LibTorch 2.7 or newer (the pip torch wheel's; scripts/lib/deps.sh)");

// "2.11.0"-style version of the LibTorch we were compiled against.
inline std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

// Whether a CUDA device can be used now: false on a machine without a GPU or driver, where
// the same CUDA-enabled binary trains on CPU.
inline bool cuda_available() { return torch::cuda::is_available(); }

// --- autocast (train.precision bf16-mixed) -------------------------------------------------
// Through the per-device API of 2.4+ (set_autocast_enabled(kCPU, ...)), which replaced one
// function per device.

// The thread's autocast settings, for CPU and CUDA, as torch.utils.checkpoint records them
// so that a recomputation runs exactly as the original forward did.
struct AutocastState {
  bool cpu = false;
  torch::ScalarType cpu_dtype = torch::kBFloat16;
  bool cuda = false;
  torch::ScalarType cuda_dtype = torch::kBFloat16;
  // Whether casts of fp32 leaf weights are cached (reused) until the outermost scope ends.
  // A cast cached under no_grad has no autograd history and, reused later with grad on,
  // silently stops the weight's gradient (pytorch issue 158232): code that runs forwards
  // with grad off inside an autocast scope turns the cache off there. (Only non-view fp32
  // leaves are cached, e.g. at::linear's weight; bireco's layers multiply by weight.t().)
  bool cache = true;
};

inline AutocastState autocast_state() {
  AutocastState s;
  s.cpu = at::autocast::is_autocast_enabled(at::kCPU);
  s.cpu_dtype = at::autocast::get_autocast_dtype(at::kCPU);
  s.cuda = at::autocast::is_autocast_enabled(at::kCUDA);
  s.cuda_dtype = at::autocast::get_autocast_dtype(at::kCUDA);
  s.cache = at::autocast::is_autocast_cache_enabled();
  return s;
}

inline void set_autocast_state(const AutocastState& s) {
  at::autocast::set_autocast_enabled(at::kCPU, s.cpu);
  at::autocast::set_autocast_dtype(at::kCPU, s.cpu_dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, s.cuda);
  at::autocast::set_autocast_dtype(at::kCUDA, s.cuda_dtype);
  at::autocast::set_autocast_cache_enabled(s.cache);
}

// Enters an autocast state for its lifetime and restores the previous one on exit, so that
// guards nest (torch.autocast's __enter__ / __exit__): leaving the outermost scope drops the
// cached weight casts.
class AutocastGuard {
 public:
  explicit AutocastGuard(const AutocastState& state) : previous_(autocast_state()) {
    set_autocast_state(state);
    at::autocast::increment_nesting();
  }
  // Autocast on `device`'s type (CPU or CUDA) switched on or off, to `dtype`; the other
  // device's settings are kept.
  AutocastGuard(const torch::Device& device, bool enabled,
                torch::ScalarType dtype = torch::kBFloat16)
      : AutocastGuard(with_device(autocast_state(), device, enabled, dtype)) {}
  ~AutocastGuard() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    set_autocast_state(previous_);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  AutocastState previous_;

  static AutocastState with_device(AutocastState s, const torch::Device& device, bool enabled,
                                   torch::ScalarType dtype) {
    if (device.is_cuda()) {
      s.cuda = enabled;
      s.cuda_dtype = dtype;
    } else {
      s.cpu = enabled;
      s.cpu_dtype = dtype;
    }
    return s;
  }
};

// The current state with the weight-cast cache off: for forwards that run with grad off
// inside an autocast scope (checkpointed layers, GradCache's first pass), see AutocastState.
inline AutocastState autocast_state_without_cache() {
  auto s = autocast_state();
  s.cache = false;
  return s;
}

}  // namespace bireco::compat

// --- c10d -----------------------------------------------------------------------------------
// USE_C10D_NCCL is what c10d's own headers test; cmake/torch_backends.cmake defines it (with the
// include folder of the wheel's own nvidia-nccl package) when the LibTorch found is CUDA-enabled.
#ifdef USE_C10D_NCCL
#define BIRECO_HAS_NCCL 1
#else
#define BIRECO_HAS_NCCL 0
#endif

namespace bireco::compat {

constexpr bool kHasNccl = BIRECO_HAS_NCCL;

}  // namespace bireco::compat
