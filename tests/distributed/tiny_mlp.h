// The tiny model and data shared by dist_worker (each rank) and the single-process references.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <utility>
#include <vector>

namespace bireco::test::dist {

constexpr int64_t kInputs = 4, kHidden = 16, kOutputs = 3;

// Linear(4,16) - tanh - Linear(16,3); the first bias is frozen (requires_grad false) so that
// gradient sync must skip it, as it skips frozen base weights under LoRA.
inline torch::nn::Sequential make_mlp(uint64_t seed) {
  torch::manual_seed(seed);
  torch::nn::Sequential mlp(torch::nn::Linear(kInputs, kHidden), torch::nn::Functional([](const torch::Tensor& t) { return torch::tanh(t); }),
                            torch::nn::Linear(kHidden, kOutputs));
  mlp->parameters()[1].set_requires_grad(false);
  return mlp;
}

// x [n, 4], y [n, 3], the same on every rank for a seed.
inline std::pair<torch::Tensor, torch::Tensor> make_batch(uint64_t seed, int64_t n) {
  auto gen = at::detail::createCPUGenerator(seed);
  return {torch::randn({n, kInputs}, gen), torch::randn({n, kOutputs}, gen)};
}

inline torch::Tensor mlp_loss(torch::nn::Sequential& mlp, const torch::Tensor& x, const torch::Tensor& y) {
  return torch::mse_loss(mlp->forward(x), y);
}

// Rows of rank r out of `world` equal shares.
inline torch::Tensor shard(const torch::Tensor& t, int rank, int world) {
  const int64_t rows = t.size(0) / world;
  return t.narrow(0, rank * rows, rows);
}

// The all-gather test's inputs: x_r [3, 5] and the weights of rank r's loss [world*3, 5].
inline torch::Tensor gather_input(int rank) {
  return torch::randn({3, 5}, at::detail::createCPUGenerator(10 + rank));
}
inline torch::Tensor gather_weights(int rank, int world) {
  return torch::randn({world * 3, 5}, at::detail::createCPUGenerator(20 + rank));
}
// Rank r's loss over the gathered rows: depends on every rank's rows, differently per rank.
inline torch::Tensor gather_loss(const torch::Tensor& gathered, int rank, int world) {
  return (gathered * gather_weights(rank, world)).sum(1).pow(2).sum();
}

constexpr int kTrainSteps = 5;
constexpr int64_t kTrainBatch = 8;
constexpr double kTrainLr = 0.1;

// Copies; an undefined tensor (a frozen parameter's gradient) becomes an empty one, which
// torch::save can write.
inline std::vector<torch::Tensor> detached(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> out;
  for (const auto& t : tensors) out.push_back(t.defined() ? t.detach().clone() : torch::empty({0}));
  return out;
}

}  // namespace bireco::test::dist
