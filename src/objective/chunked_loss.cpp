#include "bireco/objective/chunked_loss.h"

#include <algorithm>

#include "bireco/util/compat.h"

namespace bireco::objective {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Fused LM head + cross-entropy over chunks of positions. The memory it saves, step by step:
//
//  1. The caller keeps only the N labelled positions: h [N, C] (padding, prefix slots and the
//     last position of each text never reach the head).
//  2. Forward, without autograd: for each chunk of n <= chunk positions, logits = h_c W^T
//     [n, V] in float32, loss_c = logsumexp(logits) - logits[label]; add up the losses and
//     the argmax hits; drop the logits. Peak: one [n, V] block instead of [N, V].
//  3. Only h, W and the labels are saved for backward (no logits, no softmax).
//  4. Backward recomputes each chunk's logits (one extra h_c W^T per chunk: the price of the
//     memory saving) and forms dlogits = g * (softmax(logits) - onehot(label)) [n, V].
//  5. dh_c = dlogits W [n, C] goes into its rows of dh; dW += dlogits^T h_c [V, C].
//  6. dlogits is dropped before the next chunk, so backward also peaks at one [n, V] block.
//  7. The result equals the plain loss (plain_token_loss) up to float32 summation order;
//     tests/objective checks loss and gradients against it.
//  8. Under autocast (bf16-mixed) h_c W^T runs in bf16 like the plain path's head; backward
//     re-enters the forward's autocast state, so the recomputed logits are the forward's and
//     dh, dW are the bf16 products autograd would form for the plain path.
// Logits in at least float32 (bf16 / fp16 weights compute them in float32; float64 stays).
torch::Tensor upcast(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  return type == torch::kBFloat16 || type == torch::kHalf ? t.to(torch::kFloat32) : t;
}

// Carries the forward's autocast state to backward through saved_data.
struct AutocastHolder : torch::CustomClassHolder {
  compat::AutocastState state;
};

struct ChunkedCrossEntropy : torch::autograd::Function<ChunkedCrossEntropy> {
  static variable_list forward(AutogradContext* ctx, torch::Tensor hidden, torch::Tensor weight,
                               torch::Tensor labels, int64_t chunk) {
    const int64_t n = hidden.size(0);
    auto loss = torch::zeros({}, upcast(hidden).options());
    auto correct = torch::zeros({}, labels.options());
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t end = std::min(n, begin + chunk);
      auto logits = upcast(torch::matmul(hidden.slice(0, begin, end), weight.t()));  // (n, V)
      auto target = labels.slice(0, begin, end);
      auto picked = logits.gather(1, target.unsqueeze(1)).squeeze(1);
      loss += (torch::logsumexp(logits, 1) - picked).sum();
      correct += (logits.argmax(1) == target).sum();
    }
    ctx->save_for_backward({hidden, weight, labels});
    ctx->saved_data["chunk"] = chunk;
    auto autocast = c10::make_intrusive<AutocastHolder>();
    autocast->state = compat::autocast_state_without_cache();  // grad is off in backward
    ctx->saved_data["autocast"] = c10::IValue::make_capsule(autocast);
    ctx->mark_non_differentiable({correct});
    return {loss, correct};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto& hidden = saved[0];
    const auto& weight = saved[1];
    const auto& labels = saved[2];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const auto g = grad_outputs[0];
    const int64_t n = hidden.size(0);
    compat::AutocastGuard autocast(  // the forward's (step 8)
        c10::static_intrusive_pointer_cast<AutocastHolder>(ctx->saved_data["autocast"].toCapsule())->state);
    auto grad_hidden = torch::empty_like(hidden);
    auto grad_weight = torch::zeros(weight.sizes(), upcast(weight).options());
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t end = std::min(n, begin + chunk);
      auto h = hidden.slice(0, begin, end);
      auto logits = upcast(torch::matmul(h, weight.t()));  // (n, V)
      auto dlogits = torch::softmax(logits, 1);
      dlogits.scatter_add_(1, labels.slice(0, begin, end).unsqueeze(1),
                           -torch::ones({end - begin, 1}, dlogits.options()));
      dlogits.mul_(g);
      grad_hidden.slice(0, begin, end).copy_(torch::matmul(dlogits.to(weight.scalar_type()), weight));
      grad_weight.add_(torch::matmul(dlogits.t(), h.to(dlogits.scalar_type())));  // (V, C)
    }
    return {grad_hidden, grad_weight.to(weight.scalar_type()), torch::Tensor(), torch::Tensor()};
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
