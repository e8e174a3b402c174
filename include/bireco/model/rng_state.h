// The random state a pass draws its dropout masks from, captured and put back: what gradient
// checkpointing and GradCache need to recompute a forward pass with the same masks.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <vector>

namespace bireco::model {

class RngState {
 public:
  // The CPU generator's state and, for a pass on a GPU, that device's default generator's,
  // as torch.utils.checkpoint saves them.
  static RngState capture(const torch::Device& device);
  // Puts every captured generator back to its captured state.
  void restore() const;

 private:
  std::vector<at::Generator> generators_;
  std::vector<torch::Tensor> states_;
};

}  // namespace bireco::model
