// Packing a padded block into one row of real tokens, and attention that keeps its sequences
// apart (see packing.h).
#include "bireco/model/packing.h"

#include <algorithm>
#include <optional>

#include "bireco/util/compat.h"

namespace bireco::model {
namespace {

// Flash attention's varlen kernel: CUDA, half precision, head dim a multiple of 8 up to 256.
bool flash_varlen_applies(const torch::Tensor& q) {
  const auto type = q.scalar_type();
  return q.is_cuda() && (type == torch::kBFloat16 || type == torch::kHalf) && q.size(-1) % 8 == 0 &&
         q.size(-1) <= 256;
}

// The visibility [len, len] of one sequence where a window hides keys (i - j < window both ways;
// causal unless bidirectional), as attention_visibility builds it for a padded row.
torch::Tensor window_mask(int64_t len, bool bidirectional, int64_t window, const torch::Device& device) {
  auto idx = torch::arange(len, torch::TensorOptions().dtype(torch::kLong).device(device));
  auto i = idx.view({len, 1}), j = idx.view({1, len});
  auto allowed = (i - j < window).logical_and(j - i < window);
  if (!bidirectional) allowed = allowed.logical_and(j <= i);
  return allowed;
}

}  // namespace

torch::Tensor to_device_async(const torch::Tensor& host, const torch::Device& device) {
  if (!device.is_cuda() || host.device() == device) return host.to(device);
  return host.pin_memory().to(device, /*non_blocking=*/true);
}

PackedLayout pack_layout(const torch::Tensor& attention_mask, const torch::Tensor& positions,
                         const torch::Device& device) {
  TORCH_CHECK(attention_mask.dim() == 2, "pack_layout: attention_mask must be [B, T], got ",
              attention_mask.sizes());
  auto mask = attention_mask.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t B = mask.size(0), T = mask.size(1);
  torch::Tensor given;
  if (positions.defined()) {
    TORCH_CHECK(positions.sizes() == mask.sizes(), "pack_layout: positions ", positions.sizes(),
                " and attention_mask ", mask.sizes(), " disagree");
    given = positions.to(torch::kCPU, torch::kLong).contiguous();
  }
  auto m = mask.accessor<int64_t, 2>();
  const int64_t* given_at = given.defined() ? given.data_ptr<int64_t>() : nullptr;  // (B, T)
  std::vector<int64_t> index, position;
  index.reserve(static_cast<size_t>(B * T));
  position.reserve(static_cast<size_t>(B * T));
  PackedLayout layout;
  layout.offsets.reserve(static_cast<size_t>(B + 1));
  layout.offsets.push_back(0);
  for (int64_t b = 0; b < B; ++b) {
    int64_t first = -1, last = -1, count = 0;
    for (int64_t t = 0; t < T; ++t) {
      if (m[b][t] == 0) continue;
      if (first < 0) first = t;
      last = t;
      index.push_back(b * T + t);
      // positions_from_mask of a run: 0, 1, ... from its first real token.
      position.push_back(given_at != nullptr ? given_at[b * T + t] : count);
      ++count;
    }
    TORCH_CHECK(count == 0 || last - first + 1 == count, "pack_layout: row ", b,
                " of the attention mask has padding between real tokens; it cannot be packed");
    layout.offsets.push_back(layout.offsets.back() + count);
    layout.max_length = std::max(layout.max_length, count);
  }
  const auto n = static_cast<int64_t>(index.size());
  layout.index = to_device_async(torch::tensor(index, torch::kLong).view({n}), device);
  layout.positions = to_device_async(torch::tensor(position, torch::kLong).view({1, n}), device);
  if (device.is_cuda()) {
    std::vector<int32_t> cu(layout.offsets.begin(), layout.offsets.end());
    layout.cu_seqlens = to_device_async(torch::tensor(cu, torch::kInt32), device);
  }
  return layout;
}

torch::Tensor pack(const torch::Tensor& x, const PackedLayout& layout) {
  auto sizes = x.sizes().vec();
  std::vector<int64_t> flat = {sizes[0] * sizes[1]};
  flat.insert(flat.end(), sizes.begin() + 2, sizes.end());
  return x.reshape(flat).index_select(0, layout.index).unsqueeze(0);  // (1, N, ...)
}

torch::Tensor unpack(const torch::Tensor& y, const PackedLayout& layout, int64_t rows, int64_t length) {
  auto sizes = y.sizes().vec();  // (1, N, ...)
  std::vector<int64_t> flat = {rows * length}, padded = {rows, length};
  flat.insert(flat.end(), sizes.begin() + 2, sizes.end());
  padded.insert(padded.end(), sizes.begin() + 2, sizes.end());
  return torch::zeros(flat, y.options()).index_copy(0, layout.index, y.squeeze(0)).view(padded);
}

torch::Tensor packed_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const PackedLayout& layout, bool bidirectional, int64_t window) {
  TORCH_CHECK(q.dim() == 4 && q.size(0) == 1 && q.size(2) == layout.tokens(),
              "packed_attention: q must be [1, H, N, D] with N = ", layout.tokens(), ", got ", q.sizes());
  if (layout.tokens() == 0) return torch::empty_like(q);
  // Under CUDA autocast the rotated q / k can be float32 (rotary tables in the fp32 master
  // weights' dtype); SDPA would be cast to bf16 by autocast, so the varlen kernel is too.
  auto lower = [&](const torch::Tensor& t) {
    if (t.is_cuda() && at::autocast::is_autocast_enabled(at::kCUDA))
      return t.to(at::autocast::get_autocast_dtype(at::kCUDA));
    return t;
  };
  auto qc = lower(q), kc = lower(k), vc = lower(v);
  if (flash_varlen_applies(qc) && layout.cu_seqlens.defined()) {
    // UNTESTED on hardware when written (no GPU lent): tests/model/test_packing.cpp's CUDA
    // cases compare it with the padded SDPA pass in scripts/gpu_check.sh test.
    // Flash varlen: q [N, H, D], k / v [N, K, D] (grouped heads read in place), sequences
    // delimited by cu_seqlens; a window hides keys at distance >= window.
    auto tokens_first = [](const torch::Tensor& t) { return t.squeeze(0).transpose(0, 1).contiguous(); };
    const int64_t left = window > 0 ? window - 1 : -1;
    const int64_t right = window > 0 && bidirectional ? window - 1 : (bidirectional ? -1 : 0);
    auto out = std::get<0>(at::_flash_attention_forward(
        tokens_first(qc), tokens_first(kc), tokens_first(vc), layout.cu_seqlens, layout.cu_seqlens,
        layout.max_length, layout.max_length, /*dropout_p=*/0.0, /*is_causal=*/!bidirectional,
        /*return_debug_mask=*/false, /*scale=*/std::nullopt, left, right));  // (N, H, D)
    return out.transpose(0, 1).unsqueeze(0);                                  // (1, H, N, D)
  }
  // One SDPA call per sequence: every product is one the padded pass makes on real tokens,
  // none on padding. Costs a kernel launch per sequence and layer (~tens of µs on a CPU).
  std::vector<torch::Tensor> outs;
  outs.reserve(static_cast<size_t>(layout.sequences()));
  for (int64_t s = 0; s < layout.sequences(); ++s) {
    const int64_t begin = layout.offsets[s], len = layout.offsets[s + 1] - begin;
    if (len == 0) continue;
    std::optional<torch::Tensor> mask;
    bool causal = !bidirectional;
    if (window > 0 && window < len) {
      mask = window_mask(len, bidirectional, window, q.device());
      causal = false;
    }
    outs.push_back(at::scaled_dot_product_attention(qc.narrow(2, begin, len), kc.narrow(2, begin, len),
                                                    vc.narrow(2, begin, len), mask, /*dropout_p=*/0.0, causal,
                                                    /*scale=*/std::nullopt, /*enable_gqa=*/true));
  }
  return torch::cat(outs, 2);  // (1, H, N, D)
}

}  // namespace bireco::model
