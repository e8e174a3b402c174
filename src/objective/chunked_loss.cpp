#include "bireco/objective/chunked_loss.h"

#include <algorithm>

#include "bireco/util/compat.h"
#include "bireco/util/error.h"

namespace bireco::objective {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// LM head + cross-entropy over chunks of positions. The memory and work it saves, step by step:
//
//  1. The caller keeps only the N labelled positions: h [N, C] (padding, prefix slots and the
//     last position of each text never reach the head).
//  2. For each chunk of n <= chunk positions: logits = h_c W^T [n, V] in float32,
//     loss_c = logsumexp(logits) - logits[label]; add up the losses and the argmax hits.
//  3. The loss is a plain sum, so its gradient is the incoming scalar g times
//     dlogits = softmax(logits) - onehot(label) [n, V], giving dh_c = dlogits W [n, C] (its rows
//     of dh) and dW += dlogits^T h_c [V, C]. Backward scales dh and dW by g in float32.
//  4. HeadGradient::kFused forms them in forward from the chunk's logits, as Liger-Kernel's
//     fused linear cross-entropy does: three head matmuls per chunk, nothing saved but dh
//     [N, C] and dW [V, C] (W's dtype), the latter one weight-sized buffer held from forward
//     to backward. HeadGradient::kRecompute saves only h, W and the labels and recomputes each
//     chunk's logits in backward: a fourth matmul per chunk, no buffer held in between.
//  5. Either way logits and dlogits are dropped before the next chunk: the peak is one [n, V]
//     block instead of [N, V]. No gradient is formed for an input that needs none (a frozen
//     head, evaluation).
//  6. The result equals the plain loss (plain_token_loss) up to float32 summation order;
//     tests/objective checks loss and gradients against it, in both modes.
//  7. Under autocast (bf16-mixed) every head matmul runs in bf16 as autograd would run the
//     plain path's: fused ones inside the caller's autocast state, recomputed ones inside the
//     forward's, which backward re-enters (as torch.utils.checkpoint does).
// Logits in at least float32 (bf16 / fp16 weights compute them in float32; float64 stays).
torch::Tensor upcast(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  return type == torch::kBFloat16 || type == torch::kHalf ? t.to(torch::kFloat32) : t;
}

// The dtype the head's matmul h W^T runs in: autocast's (bf16 under bf16-mixed) where autocast
// is on for the device, else the inputs' (bf16 for pure bf16 weights, float32 otherwise).
torch::ScalarType head_compute_dtype(const torch::Tensor& h, const torch::Tensor& weight) {
  const auto device = h.is_cuda() ? at::kCUDA : at::kCPU;
  if (at::autocast::is_autocast_enabled(device)) return at::autocast::get_autocast_dtype(device);
  return torch::promote_types(h.scalar_type(), weight.scalar_type());
}

// Step 3 for one chunk: dlogits from its logits (released as soon as the softmax exists, so
// the chunk holds one [n, V] block), then dh_c into `grad_hidden_rows` and dW into
// `grad_weight`, each skipped when undefined. Both products run in the head's compute dtype,
// as autograd's backward of h W^T does on the plain path (under bf16 a float32 dlogits^T h
// over V x n x C would cost several times the bf16 one); only dW's sum over chunks is kept in
// float32.
void add_chunk_gradients(torch::Tensor logits, const torch::Tensor& h, const torch::Tensor& weight,
                         const torch::Tensor& target, torch::Tensor grad_hidden_rows,
                         torch::Tensor& grad_weight) {
  auto dlogits = torch::softmax(logits, 1);
  logits.reset();
  dlogits.scatter_add_(1, target, -torch::ones({target.size(0), 1}, dlogits.options()));
  const auto compute = head_compute_dtype(h, weight);
  if (dlogits.scalar_type() != compute) dlogits = dlogits.to(compute);
  if (grad_hidden_rows.defined()) grad_hidden_rows.copy_(torch::matmul(dlogits, weight.to(compute)));
  if (grad_weight.defined()) grad_weight.add_(torch::matmul(dlogits.t(), h.to(compute)));  // (V, C)
}

// Carries the forward's autocast state to a recomputing backward through saved_data.
struct AutocastHolder : torch::CustomClassHolder {
  compat::AutocastState state;
};

struct ChunkedCrossEntropy : torch::autograd::Function<ChunkedCrossEntropy> {
  static variable_list forward(AutogradContext* ctx, torch::Tensor hidden, torch::Tensor weight,
                               torch::Tensor labels, int64_t chunk, bool fused) {
    const int64_t n = hidden.size(0);
    const bool want_dh = hidden.requires_grad(), want_dw = weight.requires_grad();
    fused = fused && (want_dh || want_dw);
    auto loss = torch::zeros({}, upcast(hidden).options());
    auto correct = torch::zeros({}, labels.options());
    torch::Tensor grad_hidden, grad_weight;
    if (fused && want_dh) grad_hidden = torch::empty_like(hidden);
    if (fused && want_dw) grad_weight = torch::zeros(weight.sizes(), upcast(weight).options());
    for (int64_t begin = 0; begin < n; begin += chunk) {
      const int64_t end = std::min(n, begin + chunk);
      auto h = hidden.slice(0, begin, end);
      auto logits = upcast(torch::matmul(h, weight.t()));  // (n, V)
      auto target = labels.slice(0, begin, end).unsqueeze(1);
      loss += (torch::logsumexp(logits, 1) - logits.gather(1, target).squeeze(1)).sum();
      correct += (logits.argmax(1) == target.squeeze(1)).sum();
      if (fused) {
        add_chunk_gradients(std::move(logits), h, weight, target,
                            want_dh ? grad_hidden.slice(0, begin, end) : torch::Tensor(), grad_weight);
      }
    }
    ctx->saved_data["fused"] = fused;
    if (fused) {
      // Summed in float32, stored in W's dtype: what autograd accumulates into a bf16 weight.
      if (want_dw) grad_weight = grad_weight.to(weight.scalar_type());
      ctx->save_for_backward({grad_hidden, grad_weight});
    } else {
      ctx->save_for_backward({hidden, weight, labels});
      ctx->saved_data["chunk"] = chunk;
      auto autocast = c10::make_intrusive<AutocastHolder>();
      autocast->state = compat::autocast_state_without_cache();  // grad is off in backward
      ctx->saved_data["autocast"] = c10::IValue::make_capsule(autocast);
    }
    ctx->mark_non_differentiable({correct});
    return {loss, correct};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    torch::Tensor grad_hidden, grad_weight;
    if (ctx->saved_data["fused"].toBool()) {
      grad_hidden = saved[0];
      grad_weight = saved[1];
    } else {
      const auto& hidden = saved[0];
      const auto& weight = saved[1];
      const auto& labels = saved[2];
      const int64_t chunk = ctx->saved_data["chunk"].toInt();
      compat::AutocastGuard autocast(  // the forward's (step 7)
          c10::static_intrusive_pointer_cast<AutocastHolder>(ctx->saved_data["autocast"].toCapsule())->state);
      if (ctx->needs_input_grad(0)) grad_hidden = torch::empty_like(hidden);
      if (ctx->needs_input_grad(1)) grad_weight = torch::zeros(weight.sizes(), upcast(weight).options());
      for (int64_t begin = 0; begin < hidden.size(0); begin += chunk) {
        const int64_t end = std::min(hidden.size(0), begin + chunk);
        auto h = hidden.slice(0, begin, end);
        add_chunk_gradients(upcast(torch::matmul(h, weight.t())), h, weight,
                            labels.slice(0, begin, end).unsqueeze(1),
                            grad_hidden.defined() ? grad_hidden.slice(0, begin, end) : torch::Tensor(),
                            grad_weight);
      }
      if (grad_weight.defined()) grad_weight = grad_weight.to(weight.scalar_type());
    }
    const auto& g = grad_outputs[0];  // a scalar: d(total loss) / d(this sum)
    // The product in float32 (g is not rounded to bf16 first); exact when g is 1.
    const auto scaled = [&](const torch::Tensor& grad) {
      if (!grad.defined()) return torch::Tensor();
      return (upcast(grad) * g).to(grad.scalar_type());
    };
    return {scaled(grad_hidden), scaled(grad_weight), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// Rows of hidden [.., C] and labels [..] where a label is set: (h [N, C], labels [N]). The
// rows are found where the labels live (nonzero on a device tensor waits for the device).
std::pair<torch::Tensor, torch::Tensor> labelled_rows(const torch::Tensor& hidden,
                                                      const torch::Tensor& labels) {
  const int64_t c = hidden.size(-1);
  auto flat_labels = labels.reshape({-1}).to(torch::kLong);
  auto keep = (flat_labels != kIgnoreLabel).nonzero().squeeze(1);
  const auto device = hidden.device();
  return {hidden.reshape({-1, c}).index_select(0, model::to_device_async(keep, device)),
          model::to_device_async(flat_labels.index_select(0, keep), device)};
}

}  // namespace

HeadGradient head_gradient_from_name(const std::string& name) {
  if (name == "fused") return HeadGradient::kFused;
  if (name == "recompute") return HeadGradient::kRecompute;
  throw Error("objective.loss_head_gradient: '" + name + "' is not one of fused, recompute");
}

torch::Tensor head_weight(model::Transformer& model) {
  return model->lm_head_weight.defined() ? model->lm_head_weight : model->embed->weight;
}

TokenLoss chunked_token_loss(const torch::Tensor& hidden, const torch::Tensor& weight,
                             const torch::Tensor& labels, int64_t chunk_tokens,
                             HeadGradient head_gradient) {
  auto [h, target] = labelled_rows(hidden, labels);
  TokenLoss out;
  out.tokens = h.size(0);
  if (out.tokens == 0) {
    out.sum = upcast(hidden.sum() * 0);  // keeps the graph connected
    out.correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kLong).device(hidden.device()));
    return out;
  }
  const int64_t chunk = chunk_tokens > 0 ? chunk_tokens : out.tokens;
  auto result = ChunkedCrossEntropy::apply(h, weight, target, chunk,
                                           head_gradient == HeadGradient::kFused);
  out.sum = result[0];
  out.correct = result[1];
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
  out.correct = (logits.argmax(1) == target).sum();
  return out;
}

}  // namespace bireco::objective
