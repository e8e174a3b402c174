// Gradient checkpointing through a custom autograd Function (see checkpointing.h).
#include "bireco/model/checkpointing.h"

#include "bireco/model/rng_state.h"
#include "bireco/util/compat.h"

namespace bireco::model {
namespace {

// Carries the layer function (not a tensor) from forward to backward through saved_data.
struct LayerHolder : torch::CustomClassHolder {
  LayerFn fn;
  RngState rng;                    // the forward's (CPU and the input's GPU)
  compat::AutocastState autocast;  // the forward's, re-entered for the recomputation
};

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x,
                               c10::intrusive_ptr<LayerHolder> holder) {
    // autograd::Function runs forward with grad mode off: no graph, no saved activations.
    holder->rng = RngState::capture(x.device());
    // Under bf16-mixed the recomputation must cast exactly as this pass did, or the
    // gradient would be that of a different function (torch.utils.checkpoint does the same).
    // Both passes run without the weight-cast cache: this one has grad off (a cached cast
    // would carry no history), and backward may run inside a scope whose cache holds such.
    holder->autocast = compat::autocast_state_without_cache();
    ctx->saved_data["layer"] = c10::IValue::make_capsule(holder);
    ctx->save_for_backward({x});
    compat::AutocastGuard autocast(holder->autocast);
    return holder->fn(x);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_out) {
    auto holder = c10::static_intrusive_pointer_cast<LayerHolder>(ctx->saved_data["layer"].toCapsule());
    auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    // Same dropout masks as the forward pass, on the CPU and on the GPU; the generators go
    // on afterwards from where backward found them.
    const auto current = RngState::capture(x.device());
    holder->rng.restore();
    torch::Tensor y;
    {
      torch::AutoGradMode enable(true);
      compat::AutocastGuard autocast(holder->autocast);
      y = holder->fn(x);
    }
    current.restore();
    torch::autograd::backward({y}, {grad_out[0]});
    return {x.grad(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor checkpoint(const LayerFn& fn, const torch::Tensor& x) {
  auto holder = c10::make_intrusive<LayerHolder>();
  holder->fn = fn;
  // The output must join the graph even when x needs no gradient (frozen embeddings with
  // LoRA), or the layer's own parameters would never receive theirs.
  torch::Tensor input = x.requires_grad() ? x : x.detach().requires_grad_(true);
  return CheckpointFunction::apply(input, holder);
}

}  // namespace bireco::model
