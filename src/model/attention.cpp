// Rotary embeddings and grouped-query attention, as transformers' modeling_llama.py computes
// them (rotate_half form, repeat_kv = repeat_interleave over heads, float32 softmax), through
// LibTorch's scaled_dot_product_attention, with plain_attention as its slow reference.
#include <cmath>

#include "bireco/model/transformer.h"

namespace bireco::model {

torch::Tensor rope_inv_freq(const ModelConfig& c) {
  const int64_t D = c.head_dim;
  // transformers: 1 / base ** (arange(0, D, 2).float() / D), in float32.
  auto exponent = torch::arange(0, D, 2, torch::kInt64).to(torch::kFloat32) / static_cast<double>(D);
  auto inv_freq = 1.0 / torch::pow(c.rope_theta, exponent);
  const RopeScaling& s = c.rope_scaling;
  if (s.type == "linear") return inv_freq / s.factor;  // = positions / factor
  if (s.type != "llama3") return inv_freq;
  // Llama 3.1's scaling: long wavelengths slowed by `factor`, short ones kept, and a
  // smooth blend between (transformers' _compute_llama3_parameters).
  const double old_len = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelen = old_len / s.low_freq_factor;
  const double high_wavelen = old_len / s.high_freq_factor;
  auto wavelen = 2 * M_PI / inv_freq;
  auto scaled = torch::where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq);
  auto smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
  auto smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
  return torch::where(medium, smoothed, scaled);
}

std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq,
                                                     const torch::Tensor& positions,
                                                     torch::ScalarType dtype) {
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq.to(torch::kFloat32);  // (B, T, D/2)
  auto emb = torch::cat({freqs, freqs}, -1);                                                  // (B, T, D)
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);  // cos/sin broadcast over H
}

torch::Tensor visibility(const AttentionInputs& in) {
  if (in.allowed.defined()) return in.allowed;
  return attention_visibility(in.attention_mask, in.bidirectional, in.window);
}

torch::Tensor plain_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& allowed) {
  const int64_t groups = q.size(1) / k.size(1);
  auto kr = k.repeat_interleave(groups, 1);  // (B, H, T, D)
  auto vr = v.repeat_interleave(groups, 1);
  auto scores = torch::matmul(q, kr.transpose(-1, -2)) / std::sqrt(static_cast<double>(q.size(-1)));
  scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
  auto probs = torch::softmax(scores.to(torch::kFloat32), -1).to(q.scalar_type());  // (B, H, T, T)
  return torch::matmul(probs, vr);
}

AttentionImpl::AttentionImpl(const ModelConfig& c)
    : num_heads(c.num_attention_heads), num_kv_heads(c.num_key_value_heads), head_dim(c.head_dim) {
  const int64_t C = c.hidden_size, H = num_heads, K = num_kv_heads, D = head_dim;
  q_proj = register_module("q_proj", Linear(C, H * D, c.qkv_bias));
  k_proj = register_module("k_proj", Linear(C, K * D, c.qkv_bias));
  v_proj = register_module("v_proj", Linear(C, K * D, c.qkv_bias));
  o_proj = register_module("o_proj", Linear(H * D, C, c.o_bias));
  if (c.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(D, c.rms_norm_eps));
    k_norm = register_module("k_norm", RMSNorm(D, c.rms_norm_eps));
  }
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const AttentionInputs& in) {
  const int64_t B = x.size(0), T = x.size(1), H = num_heads, K = num_kv_heads, D = head_dim;
  auto q = q_proj(x).view({B, T, H, D});
  auto k = k_proj(x).view({B, T, K, D});
  auto v = v_proj(x).view({B, T, K, D}).transpose(1, 2);  // (B, K, T, D)
  if (q_norm) {  // Qwen3: per-head RMSNorm before the rotation
    q = q_norm(q);
    k = k_norm(k);
  }
  q = apply_rope(q.transpose(1, 2), in.cos, in.sin);  // (B, H, T, D)
  k = apply_rope(k.transpose(1, 2), in.cos, in.sin);  // (B, K, T, D)
  torch::Tensor out;                                  // (B, H, T, D)
  if (in.packed) {
    // B = 1, T = N real tokens of several sequences (packing.h); plain_attention, the
    // reference, stays on the padded pass.
    out = packed_attention(q, k, v, *in.packed, in.bidirectional, in.window);
  } else if (use_sdpa) {
    // enable_gqa: each group of H / K query heads reads its kv head in place, with no
    // repeat_interleave copy of K and V. Without a mask tensor (is_causal, or nothing to
    // hide) the flash / memory-efficient kernels can run.
    std::optional<torch::Tensor> mask;
    if (in.allowed.defined()) mask = in.allowed;
    const bool is_causal = !in.allowed.defined() && !in.bidirectional;
    out = at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, is_causal,
                                           /*scale=*/std::nullopt, /*enable_gqa=*/true);
  } else {
    out = plain_attention(q, k, v, visibility(in));
  }
  return o_proj(out.transpose(1, 2).reshape({B, T, H * D}));
}

}  // namespace bireco::model
