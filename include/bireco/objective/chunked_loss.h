// Token cross-entropy through the LM head without ever holding the (B x T x V) logits: the
// head and the loss run over chunks of positions (DESIGN.md, "Logits are never materialised").
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "bireco/model/transformer.h"

namespace bireco::objective {

// Label value of a position that predicts nothing (transformers' ignore_index).
constexpr int64_t kIgnoreLabel = -100;

struct TokenLoss {
  torch::Tensor sum;      // scalar, float32 or wider: sum over labelled positions of -log p(label); differentiable
  int64_t tokens = 0;     // labelled positions
  torch::Tensor correct;  // int64 scalar on the device: labelled positions whose argmax logit is the label
};

// Where the chunked loss forms the LM head's gradients (config objective.loss_head_gradient).
enum class HeadGradient {
  kFused,      // in forward, from the chunk's logits: one head matmul fewer per chunk, but dW
               // [V, C] is held from the loss's forward until its backward
  kRecompute,  // in backward, recomputing each chunk's logits: no buffer held in between
};

// "fused" | "recompute" (validated by the config reader) -> HeadGradient.
HeadGradient head_gradient_from_name(const std::string& name);

// The output projection W [V, C] of `model`: lm_head.weight, or embed_tokens.weight when tied.
torch::Tensor head_weight(model::Transformer& model);

// hidden [B, T, C] (or [N, C]) after the final norm, labels [B, T] (or [N]) aligned with it:
// labels[b, t] is what position t predicts, kIgnoreLabel where it predicts nothing. Labels on
// the host (as the objectives build them) select the rows with no device synchronisation.
// Logits are computed `chunk_tokens` positions at a time (<= 0: all at once), in float32 for
// bf16 / fp16 inputs. Both `head_gradient` modes give the same loss and gradients up to
// float rounding.
TokenLoss chunked_token_loss(const torch::Tensor& hidden, const torch::Tensor& weight,
                             const torch::Tensor& labels, int64_t chunk_tokens,
                             HeadGradient head_gradient = HeadGradient::kFused);

// The slow, obvious reference: every logit at once and torch's cross_entropy.
TokenLoss plain_token_loss(const torch::Tensor& hidden, const torch::Tensor& weight,
                           const torch::Tensor& labels);

}  // namespace bireco::objective
