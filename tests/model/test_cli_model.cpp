// `bireco forward` and `bireco info` run as the built binary (on the hf-parity fixture models).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bireco/util/compat.h"
#include "model_test_util.h"

namespace bireco::model {
namespace {
using bireco::test::TempDir;
using namespace test_util;

TEST(CliForward, OutputsMatchTransformersOnUnevenRows) {
  TempDir tmp;
  const auto fx_json = nlohmann::json::parse(bireco::test::read_file(fixture_dir("qwen2") / "fixtures.json"));
  bireco::test::write_file(tmp / "ids.json", nlohmann::json{{"input_ids", fx_json["sequences"]}}.dump());
  const auto r = bireco::test::run_command(bireco::test::bireco_binary().string() + " forward --model " +
                                           fixture_dir("qwen2").string() + " --tokens " + (tmp / "ids.json").string() +
                                           " --out " + (tmp / "out.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.output;
  auto out = read_safetensors(tmp / "out.safetensors");
  auto fx = fixtures("qwen2");
  const auto mask = fx["attention_mask"];
  ASSERT_EQ(out["last_hidden_state"].sizes(), fx["last_hidden_state"].sizes());
  EXPECT_EQ(out["logits"].scalar_type(), torch::kFloat32);
  EXPECT_LE(max_diff(out["last_hidden_state"], fx["last_hidden_state"]), 1e-4);  // zeros at padding on both
  EXPECT_LE(max_diff(out["logits"], fx["logits"]), 1e-4);
  EXPECT_LE(max_diff(out["embedding"], fx["eos_embedding"]), 1e-4);
}

TEST(CliForward, TokenOutsideVocabularyIsNamed) {
  TempDir tmp;
  bireco::test::write_file(tmp / "ids.json", R"({"input_ids": [[5, 6], [7, 9999]]})");
  const auto r = bireco::test::run_command(bireco::test::bireco_binary().string() + " forward --model " +
                                           fixture_dir("llama").string() + " --tokens " + (tmp / "ids.json").string() +
                                           " --out " + (tmp / "o.safetensors").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("input_ids[1][1]"), std::string::npos) << r.output;
}

TEST(CliInfo, ReportsArchitectureAndParameterCounts) {
  auto r = bireco::test::run_command(bireco::test::bireco_binary().string() + " info --model " +
                                     fixture_dir("llama").string());
  ASSERT_EQ(r.status, 0) << r.output;
  auto m = load_fixture_model("llama");
  int64_t total = 0;
  for (const auto& p : m->parameters()) total += p.numel();
  EXPECT_NE(r.output.find("LlamaForCausalLM"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(std::to_string(total) + " total, " + std::to_string(total) + " trainable"), std::string::npos)
      << r.output;
  // LoRA r=2 on q and v: 2 layers x 2 x (64 + 64) and 2 x 2 x (64 + 32).
  r = bireco::test::run_command(bireco::test::bireco_binary().string() + " info --model " + fixture_dir("llama").string() +
                                " --set model.lora.r=2 --set 'model.lora.targets=[q_proj, v_proj]'");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(std::to_string(total) + " total, " + std::to_string(2 * 2 * (128 + 96)) + " trainable"),
            std::string::npos)
      << r.output;
  // Bytes per parameter of the chosen precision: fp32 on this CPU by default; bf16-mixed keeps
  // the frozen base in bf16 and trains fp32 adapters.
  EXPECT_NE(r.output.find("precision        fp32: frozen weights 4 B/param"), std::string::npos)
      << r.output;
  r = bireco::test::run_command(bireco::test::bireco_binary().string() + " info --model " +
                                fixture_dir("llama").string() +
                                " --set model.lora.r=2 --set train.precision=bf16-mixed");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(
      r.output.find(
          "bf16-mixed: frozen weights 2 B/param (BFloat16), trainable 16 B/param (Float weight"),
      std::string::npos)
      << r.output;
  r = bireco::test::run_command(bireco::test::bireco_binary().string() + " info --model " +
                                fixture_dir("llama").string() +
                                " --set train.precision=fp32 --set model.dtype=bfloat16");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("model.dtype 'bfloat16' contradicts train.precision 'fp32'"),
            std::string::npos)
      << r.output;
}

// Sizing a sharded run before queueing it: Llama-3.1-8B's shape (8 030 261 248 parameters),
// full fine-tuning, per rank of 8. bf16-mixed with dist.shard optimizer: bf16 weights 2 B, bf16
// .grad 2 B + fp32 gradient shard 0.5 B, fp32 master 0.5 B, moments 1 B per parameter (the
// figure configs/stage1/llama-3.1-8b.yaml quotes); gradients drops the 2 B .grad; unsharded
// every rank holds 16 B.
TEST(CliInfo, PrintsPerRankMemoryOfShardedRuns) {
  TempDir tmp;
  bireco::test::write_file(tmp / "config.json", R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
    "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_act": "silu",
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "tie_word_embeddings": false, "attention_bias": false, "mlp_bias": false,
    "bos_token_id": 128000, "eos_token_id": 128009, "torch_dtype": "bfloat16"})");
  const std::string info =
      bireco::test::bireco_binary().string() + " info --model " + tmp.path().string();
  auto r = bireco::test::run_command(info + " --set dist.shard=optimizer --world-size 8");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("8030261248 total"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("dist.shard optimizer, 8 rank(s)"), std::string::npos) << r.output;
  EXPECT_NE(
      r.output.find("bf16-mixed    14.96 GiB   18.70 GiB    3.74 GiB    7.48 GiB   44.87 GiB"),
      std::string::npos)
      << r.output;
  r = bireco::test::run_command(info + " --set dist.shard=gradients --world-size 8");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(
      r.output.find("bf16-mixed    14.96 GiB    3.74 GiB    3.74 GiB    7.48 GiB   29.92 GiB"),
      std::string::npos)
      << r.output;
  r = bireco::test::run_command(info + " --world-size 8");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(
      r.output.find("bf16-mixed    29.92 GiB   29.92 GiB    0.00 GiB   59.83 GiB  119.66 GiB"),
      std::string::npos)
      << r.output;
  r = bireco::test::run_command(info + " --set dist.shard=params");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("dist.shard"), std::string::npos) << r.output;
}

// The one CUDA-enabled binary says what it was built against and what this machine offers:
// the test suite runs where no GPU or driver exists, so CUDA must read as unavailable there
// (and available wherever torch itself sees a device).
TEST(CliInfo, DescribesTheBuildAndWhetherCudaIsAvailable) {
  const auto r = bireco::test::run_command(bireco::test::bireco_binary().string() + " info");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("libtorch         " + compat::torch_version()), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("c10d backends    gloo"), std::string::npos) << r.output;
  EXPECT_NE(
      r.output.find(torch::cuda::is_available() ? "cuda available   yes" : "cuda available   no"),
      std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace bireco::model
