// A model directory's config.json through read_model_config. Whatever it accepts must describe
// a model the loader can build: positive sizes, heads that group evenly, an even head_dim,
// and a parameter count that fits in int64 (count_parameters must not overflow).
#include <cstdint>

#include "bireco/model/model_config.h"
#include "bireco/util/error.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bireco::model;
  const auto file = bireco::fuzz::write_input("config.json", data, size);
  ModelConfig c;
  try {
    c = read_model_config(file.parent_path());
  } catch (const bireco::Error&) {
    return 0;
  }
  BIRECO_FUZZ_CHECK(c.model_type == "llama" || c.model_type == "mistral" ||
                    c.model_type == "qwen2" || c.model_type == "qwen3");
  BIRECO_FUZZ_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 &&
                    c.num_hidden_layers > 0 && c.num_attention_heads > 0 &&
                    c.num_key_value_heads > 0);
  BIRECO_FUZZ_CHECK(c.num_attention_heads % c.num_key_value_heads == 0);
  BIRECO_FUZZ_CHECK(c.head_dim > 0 && c.head_dim % 2 == 0);
  BIRECO_FUZZ_CHECK(c.sliding_window >= 0);
  BIRECO_FUZZ_CHECK(count_parameters(c) > 0);
  return 0;
}
