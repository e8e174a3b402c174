// `bireco forward` on a real pretrained model (SmolLM2-135M-Instruct, scripts/get_smollm2.sh)
// against transformers, computed live in the test (tests/model/hf_forward.py): final hidden
// states, logits and last-token embeddings of right-padded rows of real SciFact text, in
// float32 and in bfloat16, for bireco's padding-free pass (the default) and its padded one.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <tuple>

#include "model_test_util.h"

namespace bireco::model {
namespace {
using namespace test_util;
using bireco::test::run_command;

constexpr double kFloat32Tol = 1e-4;
// bfloat16 keeps 8 significant bits: one rounding of an output of size s moves it by up to
// s/256. bireco in bf16 may differ from transformers in bf16 by 2 such steps at the largest
// output (a different summation order inside a kernel); its error against the float32
// reference may exceed transformers' own bf16 error by at most a quarter.
// The padding-free pass sums in other orders (attention per sequence, not one masked call over
// the batch): over 30 layers its bf16 outputs part from transformers' by more than 2 steps, so
// for it the bound is the quality one: its distance to transformers' bf16 outputs, and its own
// error against float32, within transformers' own bf16 error (times the slack).
constexpr double kBf16StepsOfScale = 2.0 / 256;
constexpr double kBf16ErrorSlack = 1.25;

// 3 abstracts cut to 200 tokens and 3 queries, each followed by EOS as bireco embeds them: rows of
// 11 to 201 tokens, so the batch is right-padded.
nlohmann::json real_rows(const std::filesystem::path& dir, int64_t eos) {
  const auto scifact = bireco::test::shared_dir() / "realdata/datasets/beir-scifact";
  std::string texts;
  for (const char* file : {"corpus.jsonl", "queries.jsonl"}) {
    std::ifstream in(scifact / file);
    std::string line;
    for (int i = 0; i < 3 && std::getline(in, line); ++i)
      texts += nlohmann::json{{"text", nlohmann::json::parse(line)["text"]}}.dump() + "\n";
  }
  bireco::test::write_file(dir / "texts.jsonl", texts);
  const auto tokens = run_command(
      "'" + bireco::test::bireco_binary().string() + "' tokenize --tokenizer '" +
      bireco::test::smollm2_dir().string() + "' --input '" + (dir / "texts.jsonl").string() + "'");
  EXPECT_EQ(tokens.status, 0) << tokens.output;
  nlohmann::json rows = nlohmann::json::array();
  std::istringstream lines(tokens.output);
  for (std::string line; std::getline(lines, line);) {
    auto ids = nlohmann::json::parse(line)["ids"];
    if (ids.size() > 200) ids.erase(ids.begin() + 200, ids.end());
    ids.push_back(eos);
    rows.push_back(ids);
  }
  EXPECT_EQ(rows.size(), 6u);
  return {{"input_ids", rows}};
}

using Tensors = std::map<std::string, torch::Tensor>;

// transformers' and bireco's outputs in float32 and bfloat16, computed once for the suite (each
// transformers run loads the 135M model in a fresh Python).
struct Outputs {
  Tensors hf32, ours32, hf16, ours16, padded32, padded16;  // padded*: bireco forward --padded
};

class SmolLM2Parity : public ::testing::Test {
 protected:
  void SetUp() override {
    BIRECO_REQUIRE_SMOLLM2();
    BIRECO_REQUIRE_SHARED("realdata/datasets/beir-scifact");
    BIRECO_REQUIRE_PYTHON("transformers safetensors");
    if (outputs_) return;
    const auto config = read_model_config(bireco::test::smollm2_dir());
    // The folder is the real model, not a stand-in: its shapes as published.
    ASSERT_EQ(config.num_hidden_layers, 30);
    ASSERT_EQ(config.hidden_size, 576);
    ASSERT_EQ(config.rope_theta, 100000.0);
    bireco::test::TempDir tmp;
    bireco::test::write_file(tmp / "ids.json", real_rows(tmp.path(), config.eos_token_id).dump());
    Outputs o;
    std::tie(o.hf32, o.ours32, o.padded32) = run_all(tmp, "float32");
    std::tie(o.hf16, o.ours16, o.padded16) = run_all(tmp, "bfloat16");
    outputs_ = std::make_unique<Outputs>(std::move(o));
  }
  static void TearDownTestSuite() { outputs_.reset(); }

  // transformers, bireco forward, bireco forward --padded.
  static std::tuple<Tensors, Tensors, Tensors> run_all(const bireco::test::TempDir& tmp,
                                                       const std::string& dtype) {
    const std::string model = bireco::test::smollm2_dir().string(),
                      ids = (tmp / "ids.json").string();
    const auto hf_out = tmp / ("hf_" + dtype + ".safetensors"),
               ours = tmp / ("bireco_" + dtype + ".safetensors"),
               padded = tmp / ("bireco_padded_" + dtype + ".safetensors");
    const auto hf =
        run_command("'" + bireco::test::python() + "' '" +
                    (bireco::test::source_dir() / "tests/model/hf_forward.py").string() + "' '" +
                    model + "' '" + ids + "' " + dtype + " '" + hf_out.string() + "'");
    EXPECT_EQ(hf.status, 0) << hf.output;
    const auto run =
        run_command("'" + bireco::test::bireco_binary().string() + "' forward --model '" + model +
                    "' --tokens '" + ids + "' --dtype " + dtype + " --out '" + ours.string() + "'");
    EXPECT_EQ(run.status, 0) << run.output;
    const auto run_padded =
        run_command("'" + bireco::test::bireco_binary().string() + "' forward --padded --model '" + model +
                    "' --tokens '" + ids + "' --dtype " + dtype + " --out '" + padded.string() + "'");
    EXPECT_EQ(run_padded.status, 0) << run_padded.output;
    return {read_safetensors(hf_out), read_safetensors(ours), read_safetensors(padded)};
  }

  static inline std::unique_ptr<Outputs> outputs_;
};

TEST_F(SmolLM2Parity, Float32HiddenStatesLogitsAndEmbeddingsMatchTransformers) {
  const Tensors& hf = outputs_->hf32;
  for (const auto* layout : {"padding-free", "padded"}) {
    const Tensors& ours = std::string(layout) == "padded" ? outputs_->padded32 : outputs_->ours32;
    for (const char* name : {"last_hidden_state", "logits", "embedding"}) {
      ASSERT_TRUE(hf.count(name) && ours.count(name)) << name;
      ASSERT_EQ(hf.at(name).sizes(), ours.at(name).sizes()) << name;
      const double diff = max_diff(ours.at(name), hf.at(name));
      std::cout << "[ smollm2  ] float32 " << layout << " " << name << ": max |bireco - transformers| = " << diff
                << " (largest value " << hf.at(name).abs().max().item<double>() << ")\n";
      EXPECT_LE(diff, kFloat32Tol) << layout << " " << name;
    }
  }
  // Right padding was exercised: rows of different lengths.
  EXPECT_GT(hf.at("logits").size(1), 100);
}

TEST_F(SmolLM2Parity, Bfloat16OutputsAreWithinBf16RoundingOfTransformers) {
  const Tensors &hf32 = outputs_->hf32, &hf16 = outputs_->hf16;
  for (const auto* layout : {"padding-free", "padded"}) {
    const bool padded = std::string(layout) == "padded";
    const Tensors& ours16 = padded ? outputs_->padded16 : outputs_->ours16;
    for (const char* name : {"last_hidden_state", "logits", "embedding"}) {
      const double scale = hf32.at(name).abs().max().item<double>();
      const double diff = max_diff(ours16.at(name), hf16.at(name));
      const double our_error = max_diff(ours16.at(name), hf32.at(name)),
                   hf_error = max_diff(hf16.at(name), hf32.at(name));
      std::cout << "[ smollm2  ] bfloat16 " << layout << " " << name << ": max |bireco - transformers| = " << diff
                << "; error against float32: bireco " << our_error << ", transformers " << hf_error
                << " (largest value " << scale << ")\n";
      // Padded: the kernels transformers runs, so within 2 bf16 steps; padding-free: no farther
      // from transformers' bf16 outputs than those are from float32.
      EXPECT_LE(diff, padded ? kBf16StepsOfScale * scale : hf_error) << layout << " " << name;
      EXPECT_LE(our_error, kBf16ErrorSlack * hf_error) << layout << " " << name;
      // bf16 was really used: its outputs are not the float32 ones.
      EXPECT_GT(hf_error, 0.0) << name;
    }
  }
}

}  // namespace
}  // namespace bireco::model
