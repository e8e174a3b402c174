#include "bireco/model/rng_state.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <algorithm>
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

namespace {
std::string generator_name(const at::Generator& generator) {
  return generator.device().is_cpu() ? "cpu_generator" : "cuda_generator";
}
}  // namespace

NamedTensors RngState::named(const std::string& prefix) const {
  NamedTensors out;
  for (size_t i = 0; i < generators_.size(); ++i)
    out.emplace_back(prefix + generator_name(generators_[i]), states_[i].cpu());
  return out;
}

std::vector<std::string> RngState::restore_named(const NamedTensors& states,
                                                 const std::string& prefix,
                                                 const torch::Device& device) {
  std::vector<std::string> missing;
  for (auto& generator : capture(device).generators_) {
    const std::string name = prefix + generator_name(generator);
    auto found =
        std::find_if(states.begin(), states.end(), [&](const auto& s) { return s.first == name; });
    if (found == states.end()) {
      missing.push_back(name);
      continue;
    }
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(found->second.cpu());
  }
  return missing;
}

}  // namespace bireco::model
