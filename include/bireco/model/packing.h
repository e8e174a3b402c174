// Padding-free passes: the real tokens of a padded block [B, T] laid end to end as one row
// [1, N] (N = real tokens), each sequence keeping its own positions and attending only to
// itself. Linear layers, norms and the MLP then never compute on padding; attention runs per
// sequence (varlen flash attention on CUDA in bf16 / fp16, one SDPA call per sequence
// otherwise). Equal to the padded computation (tests/model/test_packing.cpp).
#pragma once

#include <torch/torch.h>

#include <vector>

namespace bireco::model {

struct PackedLayout {
  std::vector<int64_t> offsets;  // B + 1 on the host: sequence b is tokens [offsets[b], offsets[b + 1])
  int64_t max_length = 0;        // the longest sequence
  torch::Tensor index;           // (N,) int64 on the device: each real token's row in the flattened (B*T)
  torch::Tensor positions;       // (1, N) int64 on the device: each token's rotary position
  torch::Tensor cu_seqlens;      // (B + 1,) int32 on the device (flash varlen); CUDA only

  int64_t sequences() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t tokens() const { return offsets.back(); }
};

// The layout of a padded block from its mask [B, T] (1 real, 0 padding; any tensor, read on
// the host) and the positions [B, T] the padded pass would use (positions_from_mask unless the
// caller sets them). Each row's real tokens must form one run (left or right padding): a row
// whose mask has a hole cannot be packed and is a c10::Error. Rows without real tokens are
// kept as empty sequences. Index, positions and cu_seqlens are copied to `device` without a
// host synchronisation (from pinned memory on CUDA).
PackedLayout pack_layout(const torch::Tensor& attention_mask, const torch::Tensor& positions,
                         const torch::Device& device);

// x [B, T, ...] -> [1, N, ...]: the real tokens, in layout order.
torch::Tensor pack(const torch::Tensor& x, const PackedLayout& layout);
// y [1, N, ...] -> [B, T, ...]: back in the padded layout, zeros at padding.
torch::Tensor unpack(const torch::Tensor& y, const PackedLayout& layout, int64_t rows, int64_t length);

// Attention of packed q [1, H, N, D] and k, v [1, K, N, D] (query head h reads kv head
// h / (H / K)), each sequence attending to itself only: causal unless bidirectional, keys at
// distance >= window hidden when window > 0. -> [1, H, N, D].
torch::Tensor packed_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const PackedLayout& layout, bool bidirectional, int64_t window);

// A host tensor on `device` without a host synchronisation: on CUDA through pinned memory and
// a non-blocking copy (a pageable copy waits for the GPU's queued work); as it is elsewhere.
torch::Tensor to_device_async(const torch::Tensor& host, const torch::Device& device);

}  // namespace bireco::model
