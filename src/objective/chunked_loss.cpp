#include "bireco/objective/chunked_loss.h"

#include <algorithm>

namespace bireco::objective {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Fused LM head + cross-entropy over chunks of positions. The memory and work it saves, step
// by step:
//
//  1. The caller keeps only the N labelled positions: h [N, C] (padding, prefix slots and the
//     last position of each text never reach the head).
//  2. For each chunk of n <= chunk positions: logits = h_c W^T [n, V] in float32,
//     loss_c = logsumexp(logits) - logits[label]; add up the losses and the argmax hits.
//  3. The loss is a plain sum, so its gradient is the incoming scalar g times a gradient that
//     is known already in forward. When h or W needs one, the same chunk's
//     dlogits = softmax(logits) - onehot(label) [n, V] gives dh_c = dlogits W [n, C] (its rows
//     of dh) and dW += dlogits^T h_c [V, C] at once, as Liger-Kernel's fused linear
//     cross-entropy does. Backward only scales dh and dW by g: three head matmuls per chunk,
//     where recomputing the logits in backward took four.
//  4. logits and dlogits are dropped before the next chunk: the peak is one [n, V] block
//     instead of [N, V]. Kept for backward: dh [N, C] (h itself is not saved) and dW [V, C]
//     in float32, one weight-sized buffer that backward hands to autograd as W's gradient.
//     Neither is formed for an input that needs no gradient (a frozen head, evaluation).
//  5. The result equals the plain loss (plain_token_loss) up to float32 summation order;
//     tests/objective checks loss and gradients against it.
//  6. Under autocast (bf16-mixed) every head matmul, those of step 3 included, runs in bf16
//     as autograd would run the plain path's: they run inside the caller's autocast state.
// Logits in at least float32 (bf16 / fp16 weights compute them in float32; float64 stays).
torch::Tensor upcast(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  return type == torch::kBFloat16 || type == torch::kHalf ? t.to(torch::kFloat32) : t;
}

struct ChunkedCrossEntropy : torch::autograd::Function<ChunkedCrossEntropy> {
  static variable_list forward(AutogradContext* ctx, torch::Tensor hidden, torch::Tensor weight,
                               torch::Tensor labels, int64_t chunk) {
    const int64_t n = hidden.size(0);
    const bool want_dh = hidden.requires_grad(), want_dw = weight.requires_grad();
    auto loss = torch::zeros({}, upcast(hidden).options());
    auto correct = torch::zeros({}, labels.options());
    torch::Tensor grad_hidden, grad_weight;
    if (want_dh) grad_hidden = torch::empty_like(hidden);
    if (want_dw) grad_weight = torch::zeros(weight.sizes(), upcast(weight).options());
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t end = std::min(n, begin + chunk);
      auto h = hidden.slice(0, begin, end);
      auto logits = upcast(torch::matmul(h, weight.t()));  // (n, V)
      auto target = labels.slice(0, begin, end).unsqueeze(1);
      auto picked = logits.gather(1, target).squeeze(1);
      loss += (torch::logsumexp(logits, 1) - picked).sum();
      correct += (logits.argmax(1) == target.squeeze(1)).sum();
      if (!want_dh && !want_dw) continue;
      auto dlogits = torch::softmax(logits, 1);
      logits.reset();  // the [n, V] peak holds one block, not two
      dlogits.scatter_add_(1, target, -torch::ones({end - begin, 1}, dlogits.options()));
      if (want_dh)
        grad_hidden.slice(0, begin, end).copy_(torch::matmul(dlogits.to(weight.scalar_type()), weight));
      if (want_dw) grad_weight.add_(torch::matmul(dlogits.t(), h.to(dlogits.scalar_type())));  // (V, C)
    }
    // Summed in float32, stored in W's dtype: what autograd accumulates into a bf16 weight.
    if (want_dw) grad_weight = grad_weight.to(weight.scalar_type());
    ctx->save_for_backward({grad_hidden, grad_weight});
    ctx->mark_non_differentiable({correct});
    return {loss, correct};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& g = grad_outputs[0];  // a scalar: d(total loss) / d(this sum)
    // The product in float32 (g is not rounded to bf16 first); exact when g is 1.
    const auto scaled = [&](const torch::Tensor& grad) {
      if (!grad.defined()) return torch::Tensor();
      return (upcast(grad) * g).to(grad.scalar_type());
    };
    return {scaled(saved[0]), scaled(saved[1]), torch::Tensor(), torch::Tensor()};
  }
};

// Rows of hidden [.., C] and labels [..] where a label is set: (h [N, C], labels [N]).
std::pair<torch::Tensor, torch::Tensor> labelled_rows(const torch::Tensor& hidden,
                                                      const torch::Tensor& labels) {
  const int64_t c = hidden.size(-1);
  auto flat_labels = labels.reshape({-1}).to(hidden.device(), torch::kLong);
  auto keep = (flat_labels != kIgnoreLabel).nonzero().squeeze(1);
  return {hidden.reshape({-1, c}).index_select(0, keep), flat_labels.index_select(0, keep)};
}

}  // namespace

torch::Tensor head_weight(model::Transformer& model) {
  return model->lm_head_weight.defined() ? model->lm_head_weight : model->embed->weight;
}

TokenLoss chunked_token_loss(const torch::Tensor& hidden, const torch::Tensor& weight,
                             const torch::Tensor& labels, int64_t chunk_tokens) {
  auto [h, target] = labelled_rows(hidden, labels);
  TokenLoss out;
  out.tokens = h.size(0);
  if (out.tokens == 0) {
    out.sum = upcast(hidden.sum() * 0);  // keeps the graph connected
    return out;
  }
  const int64_t chunk = chunk_tokens > 0 ? chunk_tokens : out.tokens;
  auto result = ChunkedCrossEntropy::apply(h, weight, target, chunk);
  out.sum = result[0];
  out.correct = result[1].item<int64_t>();
  return out;
}

TokenLoss plain_token_loss(const torch::Tensor& hidden, const torch::Tensor& weight,
                           const torch::Tensor& labels) {
  auto [h, target] = labelled_rows(hidden, labels);
  auto logits = upcast(torch::matmul(h, weight.t()));  // (N, V)
  TokenLoss out;
  out.tokens = h.size(0);
  out.sum = torch::nn::functional::cross_entropy(
      logits, target, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  out.correct = (logits.argmax(1) == target).sum().item<int64_t>();
  return out;
}

}  // namespace bireco::objective
