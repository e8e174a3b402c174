// The one place that knows which LibTorch bireco is built against (Debian's 1.13 on CPU,
// a pip torch 2.x with CUDA on GPU). Nothing else tests TORCH_VERSION_*.
#pragma once

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

namespace bireco::compat {

constexpr int kTorchMajor = TORCH_VERSION_MAJOR;
constexpr int kTorchMinor = TORCH_VERSION_MINOR;

// scaled_dot_product_attention (flash / memory-efficient kernels) arrived in 2.0.
constexpr bool kHasSdpa = TORCH_VERSION_MAJOR >= 2;

// "1.13.1"-style version string of the LibTorch we were compiled against.
inline std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

// Whether this build can run on CUDA at all (Debian's build cannot).
inline bool cuda_available() { return torch::cuda::is_available(); }

// Scaled dot-product attention through LibTorch's fused kernels where it has them (2.x).
// q [B, H, T, D], k/v [B, H, T, D], allowed [B, 1, T, T] bool (true = may attend).
// Returns an undefined tensor on 1.13: the caller then runs its plain implementation.
inline torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& allowed) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(q, k, v, allowed);
#else
  (void)q, (void)k, (void)v, (void)allowed;
  return {};
#endif
}

// --- autocast (train.precision bf16-mixed) -------------------------------------------------
// 1.13 has one function per device (set_cpu_enabled / set_enabled for CUDA, ...); 2.4 made
// them take the device type (set_autocast_enabled(kCPU, ...)) and deprecated the old ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define BIRECO_AUTOCAST_BY_DEVICE 1
#else
#define BIRECO_AUTOCAST_BY_DEVICE 0
#endif

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
#if BIRECO_AUTOCAST_BY_DEVICE
  s.cpu = at::autocast::is_autocast_enabled(at::kCPU);
  s.cpu_dtype = at::autocast::get_autocast_dtype(at::kCPU);
  s.cuda = at::autocast::is_autocast_enabled(at::kCUDA);
  s.cuda_dtype = at::autocast::get_autocast_dtype(at::kCUDA);
#else
  s.cpu = at::autocast::is_cpu_enabled();
  s.cpu_dtype = at::autocast::get_autocast_cpu_dtype();
  s.cuda = at::autocast::is_enabled();
  s.cuda_dtype = at::autocast::get_autocast_gpu_dtype();
#endif
  s.cache = at::autocast::is_autocast_cache_enabled();
  return s;
}

inline void set_autocast_state(const AutocastState& s) {
#if BIRECO_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_enabled(at::kCPU, s.cpu);
  at::autocast::set_autocast_dtype(at::kCPU, s.cpu_dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, s.cuda);
  at::autocast::set_autocast_dtype(at::kCUDA, s.cuda_dtype);
#else
  at::autocast::set_cpu_enabled(s.cpu);
  at::autocast::set_autocast_cpu_dtype(s.cpu_dtype);
  at::autocast::set_enabled(s.cuda);
  at::autocast::set_autocast_gpu_dtype(s.cuda_dtype);
#endif
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
  AutocastGuard(const torch::Device& device, bool enabled, torch::ScalarType dtype = torch::kBFloat16)
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

// --- c10d (used by dist/ only; forward declarations, so nothing else pays for c10d) ---------
namespace c10d {
class ProcessGroup;
class Backend;
}  // namespace c10d

// USE_C10D_NCCL is what c10d's own headers test; a CUDA build of bireco defines it (with
// NCCL's include folder) to get ProcessGroupNCCL. Debian's CPU LibTorch has no NCCL.
#ifdef USE_C10D_NCCL
#define BIRECO_HAS_NCCL 1
#else
#define BIRECO_HAS_NCCL 0
#endif

namespace bireco::compat {

constexpr bool kHasNccl = BIRECO_HAS_NCCL;

// The class that owns the collectives (allreduce, allgather, broadcast, barrier): 2.x split
// ProcessGroup into a dispatching ProcessGroup and per-backend `Backend`s
// (ProcessGroupGloo/NCCL derive from Backend); in 1.13 they derive from ProcessGroup.
#if TORCH_VERSION_MAJOR >= 2
using C10dCollectives = c10d::Backend;
#else
using C10dCollectives = c10d::ProcessGroup;
#endif

}  // namespace bireco::compat
