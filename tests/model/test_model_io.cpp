// save_pretrained / load round trips (single file, sharded, tied), LoRA and PEFT adapters,
// gradient checkpointing, and config.json parsing including Qwen3's q/k norm.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>

#include "bireco/model/checkpointing.h"
#include "bireco/model/hf_io.h"
#include "bireco/model/lora.h"
#include "bireco/model/pooling.h"
#include "bireco/model/rng_state.h"
#include "bireco/util/error.h"
#include "model_test_util.h"

namespace bireco::model {
namespace {
using ::bireco::test::error_of;
using bireco::test::TempDir;
using namespace test_util;
namespace fs = std::filesystem;

void expect_same_parameters(Transformer& a, Transformer& b) {
  auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
}

Transformer reload(const fs::path& dir) {
  config::ModelConfig o;
  o.path = dir.string();
  o.device = "cpu";
  return load(o, 0);
}

TEST(HfSave, SaveThenLoadIsBitExactAndCopiesSideFiles) {
  TempDir tmp;
  auto m = load_fixture_model("llama");
  save_pretrained(m, tmp / "out", {fixture_dir("llama")});
  EXPECT_TRUE(fs::exists(tmp / "out" / "generation_config.json"));
  EXPECT_FALSE(fs::exists(tmp / ("out.tmp-" + std::to_string(::getpid()))));
  const SafetensorsFile f(tmp / "out" / "model.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.names().size(), hf_weight_table(m->config).size());
  auto back = reload(tmp / "out");
  expect_same_parameters(m, back);
}

TEST(HfSave, TiedModelWritesNoLmHead) {
  TempDir tmp;
  auto m = load_fixture_model("qwen2");
  save_pretrained(m, tmp / "out");
  const SafetensorsFile f(tmp / "out" / "model.safetensors");
  EXPECT_FALSE(f.contains("lm_head.weight"));
  EXPECT_TRUE(f.contains("model.layers.0.self_attn.q_proj.bias"));
  auto back = reload(tmp / "out");
  expect_same_parameters(m, back);
}

TEST(HfSave, ShardedCheckpointHasIndexAndLoadsBitExact) {
  TempDir tmp;
  auto m = load_fixture_model("mistral");
  SaveOptions o;
  o.max_shard_bytes = 100'000;
  save_pretrained(m, tmp / "out", o);
  EXPECT_FALSE(fs::exists(tmp / "out" / "model.safetensors"));
  const auto index = nlohmann::json::parse(bireco::test::read_file(tmp / "out" / "model.safetensors.index.json"));
  EXPECT_EQ(index["weight_map"].size(), hf_weight_table(m->config).size());
  std::set<std::string> files;
  for (const auto& item : index["weight_map"].items()) files.insert(item.value().get<std::string>());
  EXPECT_GT(files.size(), 1u);  // 494 KB of weights, 100 KB shards
  const std::string n = std::to_string(files.size());
  EXPECT_EQ(*files.begin(), "model-00001-of-0000" + n + ".safetensors");
  for (const auto& f : files) EXPECT_TRUE(fs::exists(tmp / "out" / f)) << f;
  auto back = reload(tmp / "out");
  expect_same_parameters(m, back);
}

TEST(HfSave, OverwritingReplacesTheOldCheckpointWhole) {
  TempDir tmp;
  auto m = load_fixture_model("llama");
  bireco::test::write_file(tmp / "out" / "stale.txt", "old");
  save_pretrained(m, tmp / "out");
  EXPECT_FALSE(fs::exists(tmp / "out" / "stale.txt"));
  EXPECT_TRUE(fs::exists(tmp / "out" / "config.json"));
}

torch::Tensor last_hidden(Transformer& m, const std::string& arch) {
  auto fx = fixtures(arch);
  return m->forward(fx["input_ids"], fx["attention_mask"]).last_hidden_state * fx["attention_mask"].unsqueeze(-1);
}

void randomise_lora_b(Transformer& m) {
  torch::NoGradGuard no_grad;
  for (auto& item : m->named_parameters())
    if (item.key().find("lora_B") != std::string::npos) item.value().normal_(0, 0.05);
}

TEST(Lora, ZeroInitialisedBLeavesOutputsUnchanged) {
  auto m = load_fixture_model("llama");
  torch::NoGradGuard no_grad;
  auto before = last_hidden(m, "llama");
  apply_lora(m, config::LoraConfig{}, 1);
  EXPECT_TRUE(torch::equal(last_hidden(m, "llama"), before));
}

TEST(Lora, OnlyAdaptersRequireGrad) {
  auto m = load_fixture_model("qwen2");
  config::LoraConfig lora;
  lora.r = 4;
  lora.targets = {"q", "v", "down_proj"};
  apply_lora(m, lora, 1);
  int64_t adapters = 0;
  for (const auto& item : m->named_parameters()) {
    const bool is_adapter = item.key().find("lora_") != std::string::npos;
    EXPECT_EQ(item.value().requires_grad(), is_adapter) << item.key();
    adapters += is_adapter;
  }
  EXPECT_EQ(adapters, 2 * 3 * m->config.num_hidden_layers);
  const auto counts = parameter_counts(*m);
  EXPECT_EQ(counts.second, m->config.num_hidden_layers * 4 * ((64 + 64) + (64 + 32) + (176 + 64)));
}

TEST(Lora, UnknownTargetIsNamed) {
  auto m = load_fixture_model("llama");
  config::LoraConfig lora;
  lora.targets = {"qkv"};
  EXPECT_NE(error_of([&] { apply_lora(m, lora, 1); }).find("model.lora.targets"), std::string::npos);
}

TEST(Lora, MergedEqualsUnmerged) {
  auto m = load_fixture_model("mistral");
  apply_lora(m, config::LoraConfig{}, 1);
  randomise_lora_b(m);
  m->eval();
  torch::NoGradGuard no_grad;
  auto unmerged = last_hidden(m, "mistral");
  auto base = load_fixture_model("mistral");
  EXPECT_GT(max_diff(unmerged, last_hidden(base, "mistral")), 1e-3) << "the adapter must change the output";
  merge_lora(m);
  for (const auto& item : m->named_parameters()) EXPECT_EQ(item.key().find("lora_"), std::string::npos);
  EXPECT_LE(max_diff(last_hidden(m, "mistral"), unmerged), 1e-5);
}

TEST(Lora, PeftAdapterSaveThenLoadRoundTrips) {
  TempDir tmp;
  auto m = load_fixture_model("llama");
  config::LoraConfig lora;
  lora.r = 4;
  lora.alpha = 8;
  apply_lora(m, lora, 3);
  randomise_lora_b(m);
  save_adapter(m, lora, tmp / "adapter", {"CAUSAL_LM", "base/llama"});

  const auto cfg = nlohmann::json::parse(bireco::test::read_file(tmp / "adapter" / "adapter_config.json"));
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["task_type"], "CAUSAL_LM");
  EXPECT_EQ(cfg["r"], 4);
  EXPECT_EQ(cfg["lora_alpha"], 8.0);
  EXPECT_EQ(cfg["target_modules"].size(), 7u);
  const SafetensorsFile f(tmp / "adapter" / "adapter_model.safetensors");
  EXPECT_TRUE(f.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  EXPECT_EQ(f.info("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight").shape,
            (std::vector<int64_t>{64, 4}));

  auto back = load_fixture_model("llama");
  const auto read = load_adapter(back, tmp / "adapter");
  EXPECT_EQ(read.r, 4);
  expect_same_parameters(m, back);
  m->eval();
  back->eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(last_hidden(m, "llama"), last_hidden(back, "llama")));
}

// Gradients of every trainable parameter and of the input embeddings for a fixed loss, on
// the model's device (returned on the CPU).
std::map<std::string, torch::Tensor> gradients(Transformer& m, bool checkpointing) {
  m->train();
  m->gradient_checkpointing = checkpointing;
  m->zero_grad();
  auto fx = fixtures("llama");
  const auto device = m->parameters()[0].device();
  auto ids = fx["input_ids"].to(device);
  auto embeds = m->embed_tokens(ids).detach().requires_grad_(true);
  auto hidden = m->forward_embeds(embeds, fx["attention_mask"]).last_hidden_state;
  auto logits = m->lm_head(hidden.reshape({-1, hidden.size(-1)}));
  auto loss = torch::nn::functional::cross_entropy(logits, ids.reshape({-1}));
  loss.backward();
  std::map<std::string, torch::Tensor> out = {{"inputs_embeds", embeds.grad().cpu()}};
  for (const auto& item : m->named_parameters())  // embed_tokens gets none: embeds are detached
    if (item.value().requires_grad() && item.value().grad().defined()) out[item.key()] = item.value().grad().cpu();
  return out;
}

TEST(GradientCheckpointing, SameGradientsAsWithout) {
  auto m = load_fixture_model("llama");
  const auto plain = gradients(m, false), recomputed = gradients(m, true);
  ASSERT_EQ(plain.size(), recomputed.size());
  for (const auto& [name, g] : plain) {
    ASSERT_TRUE(recomputed.count(name)) << name;
    EXPECT_LE(max_diff(g, recomputed.at(name)), 1e-6) << name;
  }
}

// On each test device: on CUDA the recomputation must restore the GPU's generator too.
class GradientCheckpointingOn : public ::testing::TestWithParam<std::string> {};

TEST_P(GradientCheckpointingOn, LoraAdaptersGetGradientsWithFrozenEmbeddings) {
  auto m = load_fixture_model("llama");
  config::LoraConfig lora;
  lora.dropout = 0.1;  // the recomputation must draw the same dropout masks
  apply_lora(m, lora, 1);
  randomise_lora_b(m);
  m->to(torch::Device(GetParam()));
  torch::manual_seed(5);
  const auto plain = gradients(m, false);
  torch::manual_seed(5);
  const auto recomputed = gradients(m, true);
  for (const auto& [name, g] : plain) {
    if (name == "inputs_embeds") continue;
    EXPECT_GT(g.abs().max().item<double>(), 0) << name;
    EXPECT_LE(max_diff(g, recomputed.at(name)), 1e-6) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Devices, GradientCheckpointingOn, ::testing::ValuesIn(test_devices()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// A checkpoint's trainer state carries the generators by name (RngState::named); restoring
// them by name gives the same dropout draws on the test device as when they were saved.
class RngStateOn : public ::testing::TestWithParam<std::string> {};

TEST_P(RngStateOn, NamedStatesRestoreTheDrawsOfTheDevice) {
  const torch::Device device(GetParam());
  torch::manual_seed(11);
  const auto saved = RngState::capture(device).named("rank1.");
  std::vector<std::string> names;
  for (const auto& [name, state] : saved) {
    names.push_back(name);
    EXPECT_TRUE(state.device().is_cpu()) << name;
  }
  const std::vector<std::string> expected_names =
      device.is_cpu() ? std::vector<std::string>{"rank1.cpu_generator"}
                      : std::vector<std::string>{"rank1.cpu_generator", "rank1.cuda_generator"};
  EXPECT_EQ(names, expected_names);
  const auto draw = [&] {
    return torch::dropout(torch::ones({64}, torch::TensorOptions().device(device)), 0.5, true)
        .cpu();
  };
  const auto first = draw();
  const auto other = draw();
  ASSERT_FALSE(torch::equal(first, other));  // the generator moved on
  EXPECT_TRUE(RngState::restore_named(saved, "rank1.", device).empty());
  EXPECT_TRUE(torch::equal(draw(), first));
  // A prefix the states lack leaves every generator as it is and says which it missed.
  EXPECT_EQ(RngState::restore_named(saved, "rank2.", device).size(), expected_names.size());
}

INSTANTIATE_TEST_SUITE_P(Devices, RngStateOn, ::testing::ValuesIn(test_devices()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

nlohmann::json qwen3_config() {
  return {{"architectures", {"Qwen3ForCausalLM"}}, {"model_type", "qwen3"}, {"vocab_size", 50},
          {"hidden_size", 32}, {"intermediate_size", 48}, {"num_hidden_layers", 2},
          {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"head_dim", 16},
          {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0}, {"tie_word_embeddings", true},
          {"hidden_act", "silu"}, {"attention_bias", false}};
}

TEST(ModelConfigParse, Qwen3HasExplicitHeadDimAndQkNorm) {
  const auto c = parse_model_config(qwen3_config());
  EXPECT_EQ(c.head_dim, 16);  // not hidden / heads = 8
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  Transformer m(c);
  EXPECT_EQ(m->named_parameters()["layers.0.self_attn.q_proj.weight"].sizes(), (std::vector<int64_t>{64, 32}));
  bool has_q_norm = false;
  for (const auto& [hf, ours] : hf_weight_table(c)) has_q_norm |= hf == "model.layers.1.self_attn.q_norm.weight";
  EXPECT_TRUE(has_q_norm);
  EXPECT_EQ(count_parameters(c), parameter_counts(*m).first);
}

TEST(ModelConfigParse, UnsupportedMathIsAnErrorNamingTheKey) {
  auto j = qwen3_config();
  j["model_type"] = "gpt2";
  EXPECT_NE(error_of([&] { parse_model_config(j); }).find("model_type"), std::string::npos);
  j = qwen3_config();
  j["hidden_act"] = "gelu";
  EXPECT_NE(error_of([&] { parse_model_config(j); }).find("hidden_act"), std::string::npos);
  j = qwen3_config();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_NE(error_of([&] { parse_model_config(j); }).find("rope_scaling.rope_type"), std::string::npos);
  j = qwen3_config();
  j.erase("hidden_size");
  EXPECT_NE(error_of([&] { parse_model_config(j); }).find("hidden_size"), std::string::npos);
}

TEST(ModelConfigParse, ParameterCountMatchesTheFixtureModels) {
  for (const char* arch : {"llama", "qwen2", "mistral"}) {
    auto m = load_fixture_model(arch);
    EXPECT_EQ(count_parameters(m->config), parameter_counts(*m).first) << arch;
  }
}

Transformer random_qwen3(int64_t seed) {
  auto j = qwen3_config();
  j["rms_norm_eps"] = 1e-12;  // so that RMSNorm is exactly scale-invariant in float32
  Transformer m(parse_model_config(j));
  init_random(m, seed);
  torch::NoGradGuard no_grad;
  for (auto& item : m->named_parameters())
    if (item.key().find("norm") != std::string::npos) item.value().uniform_(0.5, 1.5);
  m->eval();
  return m;
}

// RMSNorm makes q and k scale-free: scaling q_proj and k_proj changes nothing only if the
// q/k norms are applied (each is scale-invariant up to eps).
TEST(Qwen3, QkNormMakesAttentionInvariantToScalingQueryAndKeyProjections) {
  torch::NoGradGuard no_grad;
  auto m = random_qwen3(7);
  auto ids = torch::randint(0, 50, {2, 9});
  auto mask = torch::ones({2, 9}, torch::kLong);
  auto before = m->forward(ids, mask).last_hidden_state;
  for (auto& item : m->named_parameters())
    if (item.key().find("q_proj") != std::string::npos || item.key().find("k_proj") != std::string::npos)
      item.value().mul_(7.0);
  EXPECT_LE(max_diff(m->forward(ids, mask).last_hidden_state, before), 1e-4);
  // Without the norms the same scaling changes the result (the invariant is not vacuous).
  for (auto& item : m->named_modules())
    if (auto* a = dynamic_cast<AttentionImpl*>(item.value().get())) a->q_norm = RMSNorm(nullptr), a->k_norm = RMSNorm(nullptr);
  auto unnormed = m->forward(ids, mask).last_hidden_state;
  EXPECT_GT(max_diff(unnormed, before), 1e-2);
}

// With q_norm's weight 0 every score is 0, so causal attention at position t is the plain
// mean of v over positions 0..t: computed explicitly here from the layer's projections.
TEST(Qwen3, ZeroQueryNormGivesRunningMeanOfValues) {
  torch::NoGradGuard no_grad;
  auto m = random_qwen3(8);
  auto layer = m->layers->ptr<DecoderLayerImpl>(0);
  layer->self_attn->q_norm->weight.zero_();
  const int64_t T = 6, K = 2, D = 16;
  auto x = torch::randn({1, T, 32});
  AttentionInputs in;
  std::tie(in.cos, in.sin) = rope_cos_sin(m->inv_freq, torch::arange(T).unsqueeze(0), torch::kFloat32);
  in.allowed = attention_visibility(torch::ones({1, T}, torch::kLong), false, 0);
  auto out = layer->self_attn->forward(x, in);  // (1, T, C)
  auto v = layer->self_attn->v_proj(x).view({T, K, D});
  auto running = v.cumsum(0) / torch::arange(1, T + 1, torch::kFloat32).view({T, 1, 1});  // (T, K, D)
  auto heads = running.repeat_interleave(2, 1).reshape({1, T, 4 * D});                   // head h <- kv h/2
  EXPECT_LE(max_diff(out, layer->self_attn->o_proj(heads)), 1e-5);
}

TEST(Pooling, MeanAndWeightedMeanUseOnlyRealTokensOnEitherSide) {
  auto h = torch::arange(1, 7, torch::kFloat32).view({1, 3, 2}).repeat({2, 1, 1});  // rows [1,2],[3,4],[5,6]
  auto right = torch::tensor({{1, 1, 0}, {1, 1, 0}});
  auto left_h = torch::stack({h[0].roll(1, 0), h[1].roll(1, 0)});
  auto left = torch::tensor({{0, 1, 1}, {0, 1, 1}});
  auto mean = torch::tensor({{2.f, 3.f}, {2.f, 3.f}});
  auto weighted = torch::tensor({{(1 + 2 * 3) / 3.f, (2 + 2 * 4) / 3.f}}).repeat({2, 1});
  EXPECT_LE(max_diff(pool(h, right, "mean"), mean), 1e-6);
  EXPECT_LE(max_diff(pool(left_h, left, "mean"), mean), 1e-6);
  EXPECT_LE(max_diff(pool(h, right, "weighted_mean"), weighted), 1e-6);
  EXPECT_LE(max_diff(pool(left_h, left, "weighted_mean"), weighted), 1e-6);
  EXPECT_LE(max_diff(pool(h, right, "last"), torch::tensor({{3.f, 4.f}, {3.f, 4.f}})), 0);
  EXPECT_LE(max_diff(pool(h, right, "last", true).norm(2, -1), torch::ones({2})), 1e-6);
  EXPECT_NE(error_of([&] { pool(h, right, "max"); }).find("model.pooling"), std::string::npos);
}

}  // namespace
}  // namespace bireco::model
