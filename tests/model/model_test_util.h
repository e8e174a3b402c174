// Helpers shared by the model suites: the hf-parity fixture models and tensor comparisons.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "bireco/model/load.h"
#include "bireco/model/safetensors.h"
#include "test_support.h"

namespace bireco::model::test_util {

inline std::filesystem::path fixture_dir(const std::string& arch) {
  return bireco::test::data_dir() / "hf-parity" / arch;
}

inline Transformer load_fixture_model(const std::string& arch) {
  config::ModelConfig o;
  o.path = fixture_dir(arch).string();
  o.device = "cpu";
  Transformer m = load(o, 0);
  m->eval();
  return m;
}

inline std::map<std::string, torch::Tensor> fixtures(const std::string& arch) {
  return read_safetensors(fixture_dir(arch) / "fixtures.safetensors");
}

// The devices that device-taking suites run on: the CPU, and CUDA where this machine has a
// device (the same binary runs both; scripts/gpu_check.sh runs the suite on the GPU machine).
inline std::vector<std::string> test_devices() {
  if (torch::cuda::is_available()) return {"cpu", "cuda"};
  return {"cpu"};
}

// max |a - b| over entries where mask (broadcast from [B, T]) is 1.
inline double max_diff(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask = {}) {
  auto d = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs();
  if (mask.defined()) {
    auto m = mask.to(torch::kFloat64);
    while (m.dim() < d.dim()) m = m.unsqueeze(-1);
    d = d * m;
  }
  return d.max().item<double>();
}

// A 2-layer Llama small enough for property tests (hidden 32, 4 heads over 2 KV heads, head
// dim 8, BOS 1, EOS 2): callers build it, init_random it with their seed and adapt it.
inline ModelConfig tiny_llama_config(int64_t vocab, bool tied = false) {
  ModelConfig c;
  c.model_type = "llama";
  c.architecture = "LlamaForCausalLM";
  c.vocab_size = vocab;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = tied;
  c.bos_token_id = 1;
  c.eos_token_id = 2;
  return c;
}

}  // namespace bireco::model::test_util
