// Encoder and `bireco embed`: embeddings equal `bireco forward`'s last-token pooling and do
// not depend on batch size or input order.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "bireco/eval/embedding_io.h"
#include "bireco/eval/encoder.h"
#include "bireco/model/load.h"
#include "bireco/model/safetensors.h"
#include "bireco/text/embedding_template.h"
#include "test_support.h"

namespace bireco::eval {
namespace {

namespace fs = std::filesystem;

// The qwen2 HF-parity fixture (vocab 320) with the tiny byte-level tokenizer (22 ids) and
// a template it can spell.
void make_model_dir(const fs::path& dir, const std::string& embedding_json) {
  fs::create_directories(dir);
  const fs::path model = test::data_dir() / "hf-parity" / "qwen2";
  fs::copy_file(model / "config.json", dir / "config.json");
  fs::copy_file(model / "model.safetensors", dir / "model.safetensors");
  fs::copy_file(test::data_dir() / "tokenizers" / "tiny-bytelevel" / "tokenizer.json", dir / "tokenizer.json");
  if (!embedding_json.empty()) test::write_file(dir / "bireco_embedding.json", embedding_json);
}

const std::vector<std::string> kTexts = {"hello world", "hello", "world!", "lo",
                                         "hello hello world world!", "old red dew", "w"};

Encoder fixture_encoder(const fs::path& dir) {
  return Encoder::load(dir, "cpu", EncoderSettings::from_model_dir(dir));
}

TEST(EvalEncoder, EmbedEqualsForwardLastTokenEmbedding) {
  test::TempDir tmp;
  make_model_dir(tmp / "model", R"({"template": "{text}<|end|>", "normalize": false})");
  std::string lines;
  for (const auto& t : kTexts) lines += t + "\n";
  test::write_file(tmp / "texts.txt", lines);
  const auto embed = test::run_command(test::bireco_binary().string() + " embed --device cpu --model " +
                                       (tmp / "model").string() + " --input " + (tmp / "texts.txt").string() +
                                       " --batch-tokens 8 --out " + (tmp / "emb.npy").string());
  ASSERT_EQ(embed.status, 0) << embed.output;

  // The same texts through the template, then `bireco forward` (right padding, one batch).
  auto settings = EncoderSettings::from_model_dir(tmp / "model");
  const auto tokenizer = text::Tokenizer::load(tmp / "model");
  const text::EmbeddingTemplate tmpl(*tokenizer, settings.text);
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& t : kTexts) rows.push_back(tmpl.encode(t, "", 512).ids);
  EXPECT_EQ(rows[0].back().get<int>(), 21);  // <|end|>: the pooled token
  test::write_file(tmp / "ids.json", nlohmann::json{{"input_ids", rows}}.dump());
  const auto forward = test::run_command(test::bireco_binary().string() + " forward --model " +
                                         (tmp / "model").string() + " --tokens " + (tmp / "ids.json").string() +
                                         " --out " + (tmp / "fwd.safetensors").string());
  ASSERT_EQ(forward.status, 0) << forward.output;
  const auto expected = model::read_safetensors(tmp / "fwd.safetensors").at("embedding");
  const auto got = read_npy(tmp / "emb.npy");
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-5)) << (got - expected).abs().max().item<float>();
  EXPECT_EQ(test::read_file(ids_sidecar(tmp / "emb.npy")), "1\n2\n3\n4\n5\n6\n7\n");
  // NumPy v1.0 header: magic, version 1.0, a 64-byte aligned header
  const std::string raw = test::read_file(tmp / "emb.npy");
  EXPECT_EQ(raw.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t header = static_cast<unsigned char>(raw[8]) | static_cast<size_t>(static_cast<unsigned char>(raw[9])) << 8;
  EXPECT_EQ((10 + header) % 64, 0u);
  EXPECT_EQ(raw.size(), 10 + header + kTexts.size() * 64 * 4);
}

TEST(EvalEncoder, DtypeChoosesTheComputeDtypeOfTheWeights) {
  test::TempDir tmp;
  make_model_dir(tmp / "model", R"({"template": "{text}<|end|>"})");
  std::string lines;
  for (const auto& t : kTexts) lines += t + "\n";
  test::write_file(tmp / "texts.txt", lines);
  const auto embed = [&](const std::string& dtype) {
    const auto out = tmp / ("emb_" + dtype + ".npy");
    const auto r = test::run_command(test::bireco_binary().string() + " embed --device cpu --model " +
                                     (tmp / "model").string() + " --input " + (tmp / "texts.txt").string() +
                                     " --dtype " + dtype + " --out " + out.string());
    EXPECT_EQ(r.status, 0) << r.output;
    return read_npy(out);
  };
  const auto auto_ = embed("auto"), f32 = embed("float32"), bf16 = embed("bfloat16");
  // auto on the CPU: bfloat16 where its matmuls are native (AMX / AVX512-BF16), else float32.
  EXPECT_TRUE(torch::equal(auto_, model::native_bf16(torch::kCPU) ? bf16 : f32));
  // bfloat16 weights and activations: the same directions, but rounded (not float32 relabelled).
  const auto cosine = (f32 * bf16).sum(1);
  EXPECT_GT(cosine.min().item<double>(), 0.99);
  EXPECT_GT((f32 - bf16).abs().max().item<double>(), 1e-4);
  auto settings = EncoderSettings::from_model_dir(tmp / "model");
  settings.dtype = "bfloat16";
  auto encoder = Encoder::load(tmp / "model", "cpu", settings);
  EXPECT_EQ(encoder.model()->embed->weight.scalar_type(), torch::kBFloat16);
  // The cache key tells the dtypes apart.
  auto float32_settings = EncoderSettings::from_model_dir(tmp / "model");
  float32_settings.dtype = "float32";
  const auto float32 = Encoder::load(tmp / "model", "cpu", float32_settings);
  EXPECT_EQ(float32.settings().dtype, "float32");
  EXPECT_NE(encoder.settings().fingerprint(), float32.settings().fingerprint());
  settings.dtype = "float64";
  EXPECT_NE(test::error_of([&] { Encoder::load(tmp / "model", "cpu", settings); }).find("--dtype"), std::string::npos);
}

TEST(EvalEncoder, IndependentOfBatchSizeAndOrder) {
  test::TempDir tmp;
  make_model_dir(tmp / "model", R"({"template": "{text}<|end|>"})");
  Encoder encoder = fixture_encoder(tmp / "model");
  encoder.settings().show_progress = false;
  encoder.settings().batch_tokens = 1;  // one text per forward pass
  const torch::Tensor alone = encoder.encode(kTexts);
  encoder.settings().batch_tokens = 1 << 20;  // everything in one pass
  const torch::Tensor together = encoder.encode(kTexts);
  EXPECT_TRUE(torch::allclose(alone, together, 1e-5, 1e-6)) << (alone - together).abs().max().item<float>();
  // reversed input -> reversed rows
  std::vector<std::string> reversed(kTexts.rbegin(), kTexts.rend());
  encoder.settings().batch_tokens = 12;
  const torch::Tensor back = encoder.encode(reversed).flip(0);
  EXPECT_TRUE(torch::allclose(back, together, 1e-5, 1e-6));
  // normalised by default: unit rows
  EXPECT_TRUE(torch::allclose(together.norm(2, 1), torch::ones({static_cast<int64_t>(kTexts.size())}), 1e-5, 1e-6));
}

TEST(EvalEncoder, SafetensorsOutputCarriesIdsInMetadata) {
  test::TempDir tmp;
  make_model_dir(tmp / "model", R"({"template": "{text}<|end|>"})");
  test::write_file(tmp / "texts.jsonl", "{\"id\": \"a\", \"text\": \"hello\"}\n{\"id\": 7, \"text\": \"world\"}\n");
  const auto r = test::run_command(test::bireco_binary().string() + " embed --device cpu --model " +
                                   (tmp / "model").string() + " --input " + (tmp / "texts.jsonl").string() +
                                   " --out " + (tmp / "emb.safetensors").string());
  ASSERT_EQ(r.status, 0) << r.output;
  model::SafetensorsFile st(tmp / "emb.safetensors");
  EXPECT_EQ(st.info("embeddings").shape, (std::vector<int64_t>{2, 64}));
  EXPECT_EQ(st.info("embeddings").dtype, torch::kFloat32);
  EXPECT_EQ(st.metadata().at("ids"), R"(["a","7"])");
}

TEST(EvalEncoder, SettingsFileRejectsUnknownKey) {
  test::TempDir tmp;
  test::write_file(tmp / "bireco_embedding.json", R"({"pooling": "mean", "polling": "last"})");
  const std::string message = test::error_of([&] { EncoderSettings::from_model_dir(tmp.path()); });
  EXPECT_NE(message.find("`polling`"), std::string::npos) << message;
}

}  // namespace
}  // namespace bireco::eval
