// The random state a pass draws its dropout masks from, captured and put back: what gradient
// checkpointing and GradCache need to recompute a forward pass with the same masks.
#pragma once

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "bireco/model/safetensors.h"

namespace bireco::model {

class RngState {
 public:
  // The CPU generator's state and, for a pass on a GPU, that device's default generator's,
  // as torch.utils.checkpoint saves them.
  static RngState capture(const torch::Device& device);
  // Puts every captured generator back to its captured state.
  void restore() const;

  // The states by name, for a checkpoint: `<prefix>cpu_generator` and, for a GPU pass,
  // `<prefix>cuda_generator` (each a (N,) uint8 tensor on the CPU).
  NamedTensors named(const std::string& prefix = "") const;
  // Sets the CPU generator and, for a GPU `device`, its default generator from the tensors
  // named as by named(prefix). Returns the names it looked for and did not find (those
  // generators keep their state).
  static std::vector<std::string> restore_named(const NamedTensors& states,
                                                const std::string& prefix,
                                                const torch::Device& device);

 private:
  std::vector<at::Generator> generators_;
  std::vector<torch::Tensor> states_;
};

}  // namespace bireco::model
