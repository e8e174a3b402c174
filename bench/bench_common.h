// What the benchmarks share: model shapes built from a config.json-like object, and memory
// readings from /proc/self/status.
#pragma once

#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <optional>
#include <string>
#include <type_traits>

#include "bireco/util/error.h"

namespace bireco::bench {

// A Llama config.json of a named shape. `1b` is Llama-3.2-1B's (its HF config.json: hidden
// 2048, 16 layers, 32 heads, 8 KV heads, intermediate 8192, vocab 128256, tied, llama3 rope
// scaling, BOS 128000 / EOS 128001); `small` is SmolLM2-135M's config.json cut to 4 of its 30
// layers (hidden 576, 9 heads, 3 KV heads, intermediate 1536, vocab 49152, rope 1e5, tied;
// 44M parameters, 28M of them the embedding), so that SmolLM2's tokenizer and the same
// bench/workload.py batches apply; `mini` (256 x 4 layers, 12M) keeps the 32k vocabulary of
// the demo. `qwen1.5b` is Qwen2.5-1.5B's shape (a Qwen2 config, despite this function's name).
inline nlohmann::json llama_shape_config(const std::string& shape) {
  nlohmann::json j = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
                      {"hidden_act", "silu"}, {"rms_norm_eps", 1e-5}, {"rope_theta", 500000.0},
                      {"tie_word_embeddings", true}, {"max_position_embeddings", 131072},
                      {"bos_token_id", 1}, {"eos_token_id", 2},
                      {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 32.0},
                                        {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                                        {"original_max_position_embeddings", 8192}}}};
  if (shape == "1b") {
    j.update({{"vocab_size", 128256}, {"hidden_size", 2048}, {"intermediate_size", 8192},
              {"num_hidden_layers", 16}, {"num_attention_heads", 32}, {"num_key_value_heads", 8},
              {"bos_token_id", 128000}, {"eos_token_id", 128001}});
  } else if (shape == "qwen1.5b") {
    // Qwen2.5-1.5B's HF config.json: q/k/v biases (implied by model_type qwen2), rope 1e6,
    // no rope scaling, tied, vocab 151936.
    j.erase("rope_scaling");
    j.update({{"architectures", {"Qwen2ForCausalLM"}}, {"model_type", "qwen2"}, {"vocab_size", 151936},
              {"hidden_size", 1536}, {"intermediate_size", 8960}, {"num_hidden_layers", 28},
              {"num_attention_heads", 12}, {"num_key_value_heads", 2}, {"rms_norm_eps", 1e-6},
              {"rope_theta", 1000000.0}, {"max_position_embeddings", 32768},
              {"bos_token_id", 151643}, {"eos_token_id", 151643}});
  } else if (shape == "small") {
    // models/smollm2/config.json (HuggingFaceTB/SmolLM2-135M-Instruct) but 4 layers.
    j.erase("rope_scaling");
    j.update({{"vocab_size", 49152}, {"hidden_size", 576}, {"intermediate_size", 1536},
              {"num_hidden_layers", 4}, {"num_attention_heads", 9}, {"num_key_value_heads", 3},
              {"head_dim", 64}, {"rope_theta", 100000.0}, {"max_position_embeddings", 8192},
              {"pad_token_id", 2}});
  } else if (shape == "mini") {
    j.update({{"vocab_size", 32000}, {"hidden_size", 256}, {"intermediate_size", 1024},
              {"num_hidden_layers", 4}, {"num_attention_heads", 8}, {"num_key_value_heads", 2}});
  } else {
    throw Error("--shape: '" + shape + "' is not one of 1b, qwen1.5b, small, mini");
  }
  return j;
}

// A field of /proc/self/status in MiB ("VmRSS:", "VmHWM:"); 0 when absent.
inline double status_mib(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size())) / 1024.0;
  }
  return 0;
}

// Runs `measure()` in a forked child and hands its result back through a pipe, so that each
// configuration's RSS high-water mark (VmHWM) is its own. `R` must be trivially copyable.
// Empty when the child failed; *status then holds its wait status.
template <class R, class F>
std::optional<R> run_in_child(F&& measure, int* status) {
  static_assert(std::is_trivially_copyable_v<R>, "the result crosses a pipe as bytes");
  *status = 0;
  int fd[2];
  if (::pipe(fd) != 0) return std::nullopt;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fd[0]);
    const R r = measure();
    if (::write(fd[1], &r, sizeof r) != static_cast<ssize_t>(sizeof r)) ::_exit(1);
    ::_exit(0);
  }
  ::close(fd[1]);
  R r{};
  const bool ok = ::read(fd[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r);
  ::close(fd[0]);
  ::waitpid(pid, status, 0);
  if (!ok) return std::nullopt;
  return r;
}

}  // namespace bireco::bench
