// Gradient checkpointing: run a function without keeping its activations and recompute it
// during backward (torch.utils.checkpoint's reentrant variant, as a C++ autograd Function).
#pragma once

#include <torch/torch.h>

#include <functional>

namespace bireco::model {

using LayerFn = std::function<torch::Tensor(const torch::Tensor&)>;

// Returns fn(x); in backward, recomputes fn on a detached copy of x with the random state of
// the forward pass restored, the CPU's and x's GPU's (so dropout draws the same masks),
// accumulates the
// gradients of every parameter fn uses into their .grad and hands dL/dx back.
// Costs one extra forward of fn per backward; saves all of fn's intermediate activations.
torch::Tensor checkpoint(const LayerFn& fn, const torch::Tensor& x);

}  // namespace bireco::model
