// config.json values that are the wrong type, out of range or too large for int64 (found by
// reading the parser against fuzz/model_config) are errors naming the file and the key, never
// an nlohmann exception or a wrapped size. Torch-free: also runs under ASan + UBSan.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "bireco/model/model_config.h"
#include "test_support.h"

namespace bireco::model {
namespace {
using ::bireco::test::error_of;
using nlohmann::json;

// A minimal valid Llama config (2 layers, 4 heads over 64 dims).
json llama_config() {
  return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
          {"vocab_size", 256}, {"hidden_size", 64}, {"intermediate_size", 128},
          {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", 2},
          {"eos_token_id", 2}};
}

std::string parse_error(const json& j) {
  return error_of([&] { parse_model_config(j, "m/config.json"); });
}

TEST(ModelConfigValues, HandCountedParametersOfTheMinimalConfig) {
  // Per layer: q 64·64, k and v 64·32 each, o 64·64, MLP 3·64·128, two norms 2·64.
  const int64_t layer = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128 + 2 * 64;
  // Embedding and untied head 256·64 each, final norm 64.
  EXPECT_EQ(count_parameters(parse_model_config(llama_config())), 2 * layer + 2 * 256 * 64 + 64);
}

TEST(ModelConfigValues, ListsTakeTheirFirstEntry) {
  auto j = llama_config();
  j["eos_token_id"] = {128001, 128009};
  EXPECT_EQ(parse_model_config(j).eos_token_id, 128001);
  j["eos_token_id"] = json::array();
  EXPECT_EQ(parse_model_config(j).eos_token_id, -1);
}

TEST(ModelConfigValues, Transformers5RopeParametersGiveTheBaseAndScaling) {
  // What transformers 5's save_pretrained writes (SmolLM2's converted folder among them): no
  // top-level rope_theta, the base and scaling inside rope_parameters.
  auto old_style = llama_config();
  old_style["rope_theta"] = 500000.0;
  old_style["rope_scaling"] = {{"rope_type", "llama3"},
                               {"factor", 32.0},
                               {"low_freq_factor", 1.0},
                               {"high_freq_factor", 4.0},
                               {"original_max_position_embeddings", 8192}};
  auto new_style = llama_config();
  new_style["rope_parameters"] = old_style["rope_scaling"];
  new_style["rope_parameters"]["rope_theta"] = 500000.0;
  const ModelConfig a = parse_model_config(old_style), b = parse_model_config(new_style);
  EXPECT_EQ(b.rope_theta, 500000.0);
  EXPECT_EQ(b.rope_scaling.type, "llama3");
  EXPECT_EQ(b.rope_scaling.factor, a.rope_scaling.factor);
  EXPECT_EQ(b.rope_scaling.original_max_position_embeddings, 8192);

  auto plain = llama_config();
  plain["rope_parameters"] = {{"rope_theta", 100000.0}, {"rope_type", "default"}};
  EXPECT_EQ(parse_model_config(plain).rope_theta, 100000.0);
  EXPECT_EQ(parse_model_config(plain).rope_scaling.type, "default");
  plain["rope_parameters"]["rope_type"] = "yarn";
  EXPECT_NE(parse_error(plain).find("`rope_parameters.rope_type` is `yarn`"), std::string::npos);
  plain["rope_parameters"] = {{"rope_theta", "1e5"}};
  EXPECT_EQ(parse_error(plain), "m/config.json: `rope_parameters.rope_theta` must be a number");
}

TEST(ModelConfigValues, WrongTypesAndOutOfRangeValuesNameTheKey) {
  const struct {
    const char* key;
    json value;
    const char* message;
  } cases[] = {
      {"architectures", {7}, "`architectures` must be a list of class names"},
      {"eos_token_id", {"</s>"}, "`eos_token_id` must be an integer or a list of them"},
      {"eos_token_id", 2.5, "`eos_token_id` must be an integer or a list of them"},
      {"hidden_size", "64", "`hidden_size` must be an integer"},
      {"rope_scaling", {{"rope_type", "linear"}, {"factor", "8"}},
       "`rope_scaling.factor` must be a number"},
      {"max_position_embeddings", 0, "`max_position_embeddings` must be positive"},
      {"rope_theta", -1.0, "`rope_theta` must be positive"},
      {"rms_norm_eps", -1e-6, "`rms_norm_eps` must not be negative"},
      {"rope_scaling", {{"rope_type", "linear"}, {"factor", 0.0}},
       "`rope_scaling.factor` must be positive"},
      {"rope_scaling",
       {{"rope_type", "llama3"}, {"factor", 8.0}, {"original_max_position_embeddings", 0}},
       "`rope_scaling.original_max_position_embeddings` must be positive"},
  };
  for (const auto& c : cases) {
    auto j = llama_config();
    j[c.key] = c.value;
    EXPECT_EQ(parse_error(j), std::string("m/config.json: ") + c.message) << c.key;
  }
}

TEST(ModelConfigValues, SizesBeyondInt64AreRefusedNotWrapped) {
  // 2^32 · 2^32 per projection: each size alone is a valid int64, their product is not.
  auto j = llama_config();
  j["hidden_size"] = int64_t{1} << 32;
  j["intermediate_size"] = int64_t{1} << 32;
  j["num_attention_heads"] = 1;
  j["num_key_value_heads"] = 1;
  EXPECT_EQ(parse_error(j), "m/config.json: `hidden_size` and the other sizes describe more "
                            "than 2^63 parameters");
  // Just below the limit still parses: 2^20 · 2^20 · a few = about 2^43 parameters.
  j["hidden_size"] = int64_t{1} << 20;
  j["intermediate_size"] = int64_t{1} << 20;
  EXPECT_GT(count_parameters(parse_model_config(j)), int64_t{1} << 40);
}

}  // namespace
}  // namespace bireco::model
