#include "bireco/model/rng_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <mutex>

namespace bireco::model {

RngState RngState::capture(const torch::Device& device) {
  RngState s;
  s.generators_.push_back(at::detail::getDefaultCPUGenerator());
  if (!device.is_cpu()) s.generators_.push_back(at::globalContext().defaultGenerator(device));
  for (auto& generator : s.generators_) {
    std::lock_guard<std::mutex> lock(generator.mutex());
    s.states_.push_back(generator.get_state());
  }
  return s;
}

void RngState::restore() const {
  for (size_t i = 0; i < generators_.size(); ++i) {
    auto generator = generators_[i];  // a handle: the generator itself is shared
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(states_[i]);
  }
}

}  // namespace bireco::model
