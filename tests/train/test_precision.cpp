// train.precision: the autocast guard (compat.h), bf16-mixed against fp32 on the hf-parity
// fixtures, recomputation under the forward's autocast state (gradient checkpointing, the
// chunked loss), and a bf16-mixed trainer run end to end with bit-exact resume.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "../model/model_test_util.h"
#include "bireco/model/checkpointing.h"
#include "bireco/model/load.h"
#include "bireco/model/lora.h"
#include "bireco/model/safetensors.h"
#include "bireco/objective/chunked_loss.h"
#include "bireco/objective/reconstruction.h"
#include "bireco/train/checkpoint.h"
#include "bireco/train/export.h"
#include "bireco/train/precision.h"
#include "bireco/train/trainer.h"
#include "bireco/util/compat.h"
#include "bireco/util/error.h"
#include "test_support.h"
#include "tiny_run.h"

namespace bireco::train {
namespace {
namespace fs = std::filesystem;
using model::test_util::fixtures;
using model::test_util::load_fixture_model;

const torch::Device kCpu(torch::kCPU);

torch::ScalarType matmul_dtype(const torch::Device& device = kCpu) {
  const auto one = torch::ones({2, 2}, torch::TensorOptions().device(device));
  return torch::matmul(one, one).scalar_type();
}

// Whether autocast is on for `device`'s type (CPU or CUDA).
bool autocast_on(const torch::Device& device) {
  const auto s = compat::autocast_state();
  return device.is_cuda() ? s.cuda : s.cpu;
}

// On each test device: the CPU, and CUDA where there is one (the per-device autocast API).
class AutocastGuardOn : public ::testing::TestWithParam<std::string> {};

TEST_P(AutocastGuardOn, CastsMatmulToBf16AndRestoresTheStateItFound) {
  const torch::Device device(GetParam());
  const auto before = compat::autocast_state();
  ASSERT_FALSE(autocast_on(device));
  EXPECT_EQ(matmul_dtype(device), torch::kFloat32);
  {
    compat::AutocastGuard on(device, true);
    EXPECT_TRUE(autocast_on(device));
    EXPECT_EQ(matmul_dtype(device), torch::kBFloat16);
    {
      compat::AutocastGuard off(device, false);  // disables inside an enabled scope
      EXPECT_EQ(matmul_dtype(device), torch::kFloat32);
      {
        compat::AutocastGuard again(device, true);
        EXPECT_EQ(matmul_dtype(device), torch::kBFloat16);
      }
      EXPECT_EQ(matmul_dtype(device), torch::kFloat32);
    }
    EXPECT_EQ(matmul_dtype(device), torch::kBFloat16);
    {
      auto captured = compat::autocast_state_without_cache();  // as checkpointing captures it
      EXPECT_TRUE(device.is_cuda() ? captured.cuda : captured.cpu);
      EXPECT_FALSE(captured.cache);
      compat::AutocastGuard replay(captured);
      EXPECT_FALSE(compat::autocast_state().cache);
      EXPECT_EQ(matmul_dtype(device), torch::kBFloat16);
    }
    EXPECT_EQ(compat::autocast_state().cache, before.cache);
  }
  const auto after = compat::autocast_state();
  EXPECT_EQ(after.cpu, before.cpu);
  EXPECT_EQ(after.cpu_dtype, before.cpu_dtype);
  EXPECT_EQ(after.cuda, before.cuda);
  EXPECT_EQ(after.cuda_dtype, before.cuda_dtype);
  EXPECT_EQ(after.cache, before.cache);
  EXPECT_FALSE(autocast_on(device));
  EXPECT_EQ(matmul_dtype(device), torch::kFloat32);
}

INSTANTIATE_TEST_SUITE_P(Devices, AutocastGuardOn,
                         ::testing::ValuesIn(model::test_util::test_devices()));

TEST(ResolvePrecision, AutoIsBf16MixedWhereBf16IsNativeAndUnknownValuesAreNamed) {
  EXPECT_EQ(resolve_precision("auto", kCpu), model::native_bf16(kCpu) ? "bf16-mixed" : "fp32");
  EXPECT_EQ(resolve_precision("auto", torch::Device(torch::kCUDA, 0)), "bf16-mixed");
  EXPECT_EQ(resolve_precision("bf16-mixed", kCpu), "bf16-mixed");
  EXPECT_EQ(resolve_precision("bf16", kCpu), "bf16");
  const auto message = test::error_of([] { resolve_precision("fp16", kCpu); });
  EXPECT_NE(message.find("train.precision"), std::string::npos) << message;
  EXPECT_NE(message.find("'fp16'"), std::string::npos) << message;
}

TEST(NativeBf16, ReadFromTheCpuFlags) {
  const std::string zen3 = "processor : 0\nflags\t\t: fpu sse avx2 fma avx512f vaes\n";
  const std::string sapphire = "processor : 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16\n";
  const std::string cooper = "flags : avx512f avx512_bf16\n";
  EXPECT_FALSE(model::cpuinfo_has_native_bf16(zen3));
  EXPECT_TRUE(model::cpuinfo_has_native_bf16(sapphire));
  EXPECT_TRUE(model::cpuinfo_has_native_bf16(cooper));
  EXPECT_FALSE(model::cpuinfo_has_native_bf16("model name : amx_bf16 in a name\n"));  // flags lines only
  EXPECT_TRUE(model::native_bf16(torch::Device(torch::kCUDA, 0)));
}

// at::linear casts its (non-view) fp32 weight through autocast's cache. A checkpointed call
// runs with grad off: had it cached the cast, the later use below would reuse a cast without
// autograd history and the weight would miss that use's gradient (pytorch issue 158232).
// bireco's Linear multiplies by weight.t(), a view autocast never caches; this guards the rule.
TEST(AutocastGuard, CheckpointedForwardLeavesNoHistorylessCastInTheCache) {
  torch::manual_seed(2);
  auto w = torch::randn({6, 5}).requires_grad_(true);
  auto x1 = torch::randn({3, 5}), x2 = torch::randn({4, 5});
  auto grad_of_w = [&](bool checkpointed, bool cache) -> torch::Tensor {
    w.mutable_grad() = torch::Tensor();
    torch::Tensor loss;
    {
      auto state = compat::autocast_state();
      state.cpu = true;
      state.cache = cache;
      compat::AutocastGuard autocast(state);
      auto first = checkpointed ? model::checkpoint([&](const torch::Tensor& x) { return at::linear(x, w); }, x1)
                                : at::linear(x1, w);
      auto second = at::linear(x2, w);  // grad on: must reach w
      EXPECT_EQ(second.scalar_type(), torch::kBFloat16);
      loss = first.to(torch::kFloat32).pow(2).sum() + second.to(torch::kFloat32).sum();
    }
    loss.backward();
    return w.grad().clone();
  };
  // The reference casts w once per use, as the checkpointed run does (a shared cached cast
  // would sum the two uses' gradients in bf16 instead of fp32).
  const auto plain = grad_of_w(false, false);
  const auto recomputed = grad_of_w(true, true);
  EXPECT_TRUE(torch::equal(recomputed, plain)) << (recomputed - plain).abs().max().item<double>();
}

// The fixtures' batched prefix reconstruction (see tests/objective/test_reconstruction.cpp).
struct FixtureReconstruction {
  model::Transformer model{nullptr};
  torch::Tensor prefix;
  data::TextBlock target;
  objective::ReconstructionOptions options;

  explicit FixtureReconstruction(const std::string& arch) : model(load_fixture_model(arch)) {
    auto f = fixtures(arch);
    prefix = f.at("recon_batch_prefix");
    target.input_ids = f.at("recon_batch_target_ids");
    target.attention_mask = f.at("recon_batch_attention_mask").slice(1, 1);  // drop the prefix slot
    target.prefix_length = torch::zeros({target.input_ids.size(0)}, torch::kLong);
    options.predict_eos = true;
    options.eos_id = 2;
    options.chunk_tokens = 3;
  }
  // Mean token loss and the largest |logit| of the pass (fp32 head on the fp32 hidden state).
  std::pair<double, double> loss_and_logit_scale() {
    auto loss = objective::reconstruction_loss(model, prefix, target, options);
    auto in = objective::reconstruction_inputs(model, prefix, target, options);
    auto hidden = model->forward_embeds(in.embeds, in.attention_mask).last_hidden_state;
    compat::AutocastGuard fp32(kCpu, false);
    const double scale = model->lm_head(hidden.to(torch::kFloat32)).abs().max().item<double>();
    return {loss.sum.item<double>() / static_cast<double>(loss.tokens), scale};
  }
};

class Bf16Mixed : public ::testing::TestWithParam<std::string> {};

TEST_P(Bf16Mixed, ReconstructionLossIsNearFp32ButNotIdentical) {
  FixtureReconstruction r(GetParam());
  torch::NoGradGuard no_grad;
  const auto [fp32, logit_scale] = r.loss_and_logit_scale();
  double mixed = 0;
  {
    compat::AutocastGuard autocast(kCpu, true);
    mixed = r.loss_and_logit_scale().first;
  }
  // Bound: autocast rounds each matmul's inputs to bf16 (8 significant bits: relative error
  // <= 2^-9 per operand, so <= 2^-8 per product) and accumulates in fp32. Each of the L
  // layers and the head adds at most that relative error to what reaches the logits, so
  // |d logit| <= (L + 1) * 2^-8 * max|logit|; cross-entropy moves by at most 2 * max|d logit|
  // (its gradient in the logits sums to at most 2 in absolute value).
  const int64_t layers = r.model->config.num_hidden_layers;
  const double bound = 2.0 * static_cast<double>(layers + 1) * std::ldexp(1.0, -8) * logit_scale;
  EXPECT_LE(std::abs(mixed - fp32), bound) << "fp32 " << fp32 << " bf16-mixed " << mixed;
  EXPECT_NE(mixed, fp32);  // autocast did act
  EXPECT_TRUE(std::isfinite(mixed));
}

// Under autocast, gradient checkpointing recomputes each layer in the forward's autocast
// state: the recomputed graph is the forward's, so the gradients are the same bits.
TEST_P(Bf16Mixed, CheckpointedGradientsEqualPlainOnes) {
  FixtureReconstruction r(GetParam());
  r.model->train();  // checkpointing acts in training only (the fixtures have no dropout)
  auto grads = [&](bool checkpointing) {
    r.model->gradient_checkpointing = checkpointing;
    r.model->zero_grad();
    objective::TokenLoss loss;
    {
      compat::AutocastGuard autocast(kCpu, true);
      loss = objective::reconstruction_loss(r.model, r.prefix, r.target, r.options);
    }
    loss.sum.backward();  // outside the guard, as the trainer does
    std::map<std::string, torch::Tensor> out;
    for (const auto& p : r.model->named_parameters()) out[p.key()] = p.value().grad().clone();
    return out;
  };
  auto plain = grads(false);
  auto recomputed = grads(true);
  for (const auto& [name, g] : plain) {
    EXPECT_EQ(recomputed.at(name).scalar_type(), torch::kFloat32) << name;
    EXPECT_TRUE(torch::equal(recomputed.at(name), g))
        << name << " max diff " << (recomputed.at(name) - g).abs().max().item<double>();
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, Bf16Mixed, ::testing::Values("llama", "qwen2", "mistral"));

// The shared tiny run (tiny_run.h) in bf16-mixed with gradient checkpointing, a checkpoint a step.
config::StageConfig tiny_mixed_config(const fs::path& out) {
  auto c = test::tiny_run_config(out);
  c.model.gradient_checkpointing = true;
  c.train.max_steps = 3;
  c.train.precision = "bf16-mixed";
  c.checkpoint.every = 1;
  return c;
}

TEST(Bf16MixedTrainer, Fp32MasterWeightsAndMomentsFiniteLossAndBitExactResume) {
  test::TempDir tmp;
  Trainer uninterrupted(tiny_mixed_config(tmp / "whole"));
  EXPECT_EQ(uninterrupted.precision(), "bf16-mixed");
  uninterrupted.train();
  for (const auto& p : uninterrupted.model()->named_parameters())
    EXPECT_EQ(p.value().scalar_type(), torch::kFloat32) << p.key();
  std::ifstream metrics(tmp / "whole/metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line); ++lines)
    EXPECT_TRUE(std::isfinite(nlohmann::json::parse(line)["loss"].get<double>())) << line;
  EXPECT_EQ(lines, 3);
  for (const auto& [name, t] : model::read_safetensors(tmp / "whole/step-1/model.safetensors"))
    EXPECT_EQ(t.scalar_type(), torch::kFloat32) << name;
  const auto moments = read_optimizer_state(tmp / "whole/step-1");
  int64_t moment_count = 0;
  for (const auto& [name, t] : moments) {
    if (name.find(".exp_avg") == std::string::npos) continue;  // exp_avg, exp_avg_sq
    EXPECT_EQ(t.scalar_type(), torch::kFloat32) << name;
    ++moment_count;
  }
  EXPECT_GT(moment_count, 0);

  Trainer resumed(tiny_mixed_config(tmp / "second"));
  resumed.resume_from(tmp / "whole/step-1");
  resumed.train();
  auto expected = uninterrupted.model()->named_parameters();
  for (const auto& p : resumed.model()->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), expected[p.key()])) << p.key();
}

TEST(PrecisionPlan, FrozenTrainableAndAutocastPerPrecisionAndContradictionsNameBothKeys) {
  const auto fp32 = plan_precision("fp32", "auto", kCpu);
  EXPECT_EQ(fp32.frozen, torch::kFloat32);
  EXPECT_EQ(fp32.trainable, torch::kFloat32);
  EXPECT_FALSE(fp32.autocast);
  const auto pure = plan_precision("bf16", "auto", kCpu);
  EXPECT_EQ(pure.frozen, torch::kBFloat16);
  EXPECT_EQ(pure.trainable, torch::kBFloat16);
  EXPECT_FALSE(pure.autocast);
  const auto mixed = plan_precision("bf16-mixed", "auto", kCpu);
  EXPECT_EQ(mixed.frozen, torch::kBFloat16);
  EXPECT_EQ(mixed.trainable, torch::kFloat32);
  EXPECT_TRUE(mixed.autocast);
  EXPECT_EQ(plan_precision("bf16-mixed", "float32", kCpu).frozen, torch::kFloat32);
  EXPECT_EQ(plan_precision("auto", "auto", torch::Device(torch::kCUDA, 0)).precision, "bf16-mixed");
  EXPECT_EQ(plan_precision("bf16", "bfloat16", kCpu).trainable, torch::kBFloat16);
  // Bytes per parameter in training: frozen storage; trainable weight + gradient + 2 moments.
  EXPECT_EQ(frozen_bytes_per_parameter(mixed), 2.0);
  EXPECT_EQ(trainable_bytes_per_parameter(mixed), 16.0);
  EXPECT_EQ(trainable_bytes_per_parameter(pure), 8.0);
  // Sharded over 8 ranks (dist.shard): bf16-mixed computes with a bf16 copy and keeps 1/8 of
  // the fp32 master weights, moments and gradient; `optimizer` also the whole bf16 .grad.
  EXPECT_EQ(compute_dtype(mixed, true), torch::kBFloat16);
  EXPECT_EQ(compute_dtype(mixed, false), torch::kFloat32);
  EXPECT_EQ(compute_dtype(pure, true), torch::kBFloat16);
  EXPECT_EQ(compute_dtype(fp32, true), torch::kFloat32);
  const auto zero1 = trainable_bytes_per_rank(mixed, "optimizer", 8);
  EXPECT_EQ(zero1.weight, 2.0);
  EXPECT_EQ(zero1.gradient, 2.0 + 0.5);
  EXPECT_EQ(zero1.master, 0.5);
  EXPECT_EQ(zero1.moments, 1.0);
  EXPECT_EQ(trainable_bytes_per_rank(mixed, "gradients", 8).total(), 4.0);
  EXPECT_EQ(trainable_bytes_per_rank(mixed, "none", 8).total(), 16.0);
  EXPECT_EQ(trainable_bytes_per_rank(mixed, "optimizer", 1).total(), 16.0);  // nothing to shard
  EXPECT_EQ(trainable_bytes_per_rank(fp32, "optimizer", 2).total(), 4 + 4 + 2 + 2 + 4.0);
  EXPECT_NE(
      test::error_of([&] { trainable_bytes_per_rank(mixed, "params", 2); }).find("dist.shard"),
      std::string::npos);
  for (const auto& [precision, dtype] : {std::pair<std::string, std::string>{"fp32", "bfloat16"},
                                         {"bf16", "float32"},
                                         {"bf16", "float16"}}) {
    const auto message = test::error_of([&] { plan_precision(precision, dtype, kCpu); });
    EXPECT_NE(message.find("model.dtype '" + dtype + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("train.precision '" + precision + "'"), std::string::npos) << message;
  }
}

// Stage II with LoRA as the shipped configs run it: bf16-mixed, dropout, checkpointing.
config::StageConfig tiny_lora_config(const fs::path& out, const std::string& precision) {
  auto c = test::tiny_run_config(out);
  c.stage = "contrastive";
  c.model.use_lora = true;
  c.model.lora.r = 4;
  c.model.lora.alpha = 8;
  c.model.lora.dropout = 0.05;
  c.model.gradient_checkpointing = true;
  c.objective.contrastive.hard_negatives = 1;
  c.train.max_steps = 3;
  c.train.precision = precision;
  c.checkpoint.every = 1;
  return c;
}

TEST(Bf16MixedLora, Bf16BaseFp32AdaptersAndMomentsWrittenAsTrainedAndBitExactResume) {
  test::TempDir tmp;
  Trainer uninterrupted(tiny_lora_config(tmp / "whole", "bf16-mixed"));
  uninterrupted.train();
  int adapters = 0;
  for (const auto& p : uninterrupted.model()->named_parameters()) {
    const bool adapter = p.key().find(".lora_") != std::string::npos;
    EXPECT_EQ(p.value().scalar_type(), adapter ? torch::kFloat32 : torch::kBFloat16) << p.key();
    EXPECT_EQ(p.value().requires_grad(), adapter) << p.key();
    adapters += adapter;
  }
  EXPECT_GT(adapters, 0);
  int64_t moments = 0;
  for (const auto& [name, t] : read_optimizer_state(tmp / "whole/step-1")) {
    if (name.find(".exp_avg") == std::string::npos) continue;
    EXPECT_EQ(t.scalar_type(), torch::kFloat32) << name;
    ++moments;
  }
  EXPECT_EQ(moments, 2 * adapters);
  // The adapter as PEFT writes it (fp32); the merged weights in the base's bf16.
  for (const auto& [name, t] :
       model::read_safetensors(tmp / "whole/step-1/adapter/adapter_model.safetensors"))
    EXPECT_EQ(t.scalar_type(), torch::kFloat32) << name;
  for (const auto& [name, t] : model::read_safetensors(tmp / "whole/step-1/model.safetensors"))
    EXPECT_EQ(t.scalar_type(), torch::kBFloat16) << name;
  // The merged weights are base + B A alpha / r computed in fp32, rounded once into bf16 (as
  // PEFT's merge_and_unload), not a merge of adapters first rounded to bf16.
  config::ModelConfig saved;
  saved.path = (tmp / "whole/final").string();
  saved.device = "cpu";
  saved.dtype = model::stored_dtype(tmp / "whole/final");
  EXPECT_EQ(saved.dtype, "bfloat16");
  auto merged = model::load(saved, 0);
  auto merged_weights = merged->named_parameters();
  int merged_checked = 0;
  for (const auto& item : uninterrupted.model()->named_modules()) {
    const auto* linear = dynamic_cast<const model::LinearImpl*>(item.value().get());
    if (linear == nullptr || !linear->lora_A.defined()) continue;
    const auto expected = (linear->weight.to(torch::kFloat32) +
                           torch::matmul(linear->lora_B, linear->lora_A) * linear->lora_scaling)
                              .to(torch::kBFloat16);
    EXPECT_TRUE(torch::equal(merged_weights[item.key() + ".weight"], expected)) << item.key();
    ++merged_checked;
  }
  EXPECT_EQ(merged_checked, adapters / 2);
  // `bireco export` keeps the trained dtype: a bf16 model is not upcast.
  export_checkpoint(tmp / "whole/final", tmp / "exported");
  for (const auto& [name, t] : model::read_safetensors(tmp / "exported/model.safetensors"))
    EXPECT_EQ(t.scalar_type(), torch::kBFloat16) << name;

  Trainer resumed(tiny_lora_config(tmp / "second", "bf16-mixed"));
  resumed.resume_from(tmp / "whole/step-1");
  resumed.train();
  auto expected = uninterrupted.model()->named_parameters();
  for (const auto& p : resumed.model()->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), expected[p.key()])) << p.key();
}

// Why bf16-mixed is the stage-II default: at a small learning rate an AdamW update (about lr
// per step) is below half a bf16 ulp of a lora_A weight (~0.1 * 2^-8), so pure bf16 rounds
// every update away, while fp32 adapters take it.
TEST(Bf16MixedLora, SmallUpdatesMoveFp32AdaptersWherePureBf16RoundsThemAway) {
  test::TempDir tmp;
  auto changed = [&](const std::string& precision) {
    auto c = tiny_lora_config(tmp / precision, precision);
    c.optim.lr = 1e-6;
    c.optim.weight_decay = 0;
    c.schedule.warmup_steps = 0;
    c.schedule.name = "constant";
    c.checkpoint.every = 0;
    Trainer trainer(c);
    std::map<std::string, torch::Tensor> before;
    for (const auto& p : trainer.model()->named_parameters())
      if (p.key().find(".lora_A") != std::string::npos)
        before[p.key()] = p.value().detach().clone();
    trainer.train();
    int64_t moved = 0, total = 0;
    for (const auto& p : trainer.model()->named_parameters()) {
      if (!before.count(p.key())) continue;
      moved += p.value().ne(before[p.key()]).sum().item<int64_t>();
      total += p.value().numel();
    }
    std::printf("%s: %lld of %lld lora_A weights moved at lr 1e-6\n", precision.c_str(),
                static_cast<long long>(moved), static_cast<long long>(total));
    return std::make_pair(moved, total);
  };
  const auto [mixed_moved, mixed_total] = changed("bf16-mixed");
  const auto [pure_moved, pure_total] = changed("bf16");
  EXPECT_GT(mixed_moved, mixed_total / 2);
  EXPECT_LT(pure_moved, pure_total / 100);
}

// The bf16-mixed LoRA step against transformers + PEFT's (tests/train/peft_bf16_lora_step.py):
// the same bf16 fixture, PEFT's own adapter (fp32, lora_B randomised) loaded into bireco and
// upcast as the trainer does, last-token InfoNCE under bf16 autocast on both sides, backward
// outside it. Bound: both sides round every matmul's output to bf16 (relative 2^-8) but in a
// different order of operations (SDPA kernels, RoPE tables, where casts happen), so over L = 2
// layers the error is bounded as in tests/model/test_sdpa.cpp: 2(L+1)2^-7 of the largest value.
TEST(Bf16MixedLora, LossAndAdapterGradientsMatchPeftUnderBf16Autocast) {
  BIRECO_REQUIRE_PYTHON("transformers peft");
  test::TempDir tmp;
  const auto model_dir = model::test_util::fixture_dir("llama");
  const auto run =
      test::run_command("'" + test::python() + "' " +
                        (test::source_dir() / "tests/train/peft_bf16_lora_step.py").string() + " " +
                        model_dir.string() + " " + tmp.path().string());
  ASSERT_EQ(run.status, 0) << run.output;
  const auto reference = model::read_safetensors(tmp / "reference.safetensors");

  config::ModelConfig o;
  o.path = model_dir.string();
  o.device = "cpu";
  o.dtype = "bfloat16";
  auto m = model::load(o, 0);
  model::load_adapter(m, tmp / "adapter");
  std::vector<torch::Tensor> trainable;
  for (const auto& p : m->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  cast_trainable(trainable, plan_precision("bf16-mixed", "bfloat16", kCpu));
  m->train();

  const auto ids = reference.at("input_ids");
  torch::Tensor loss;
  {
    compat::AutocastGuard autocast(kCpu, true);
    const auto hidden =
        m->forward(ids, torch::ones_like(ids)).last_hidden_state.select(1, ids.size(1) - 1);
    const auto e = torch::nn::functional::normalize(
        hidden.to(torch::kFloat32), torch::nn::functional::NormalizeFuncOptions().dim(-1));
    const auto scores = 50.0 * torch::matmul(e.slice(0, 0, 2), e.slice(0, 2, 4).t());
    loss = torch::nn::functional::cross_entropy(scores, torch::arange(2));
  }
  loss.backward();

  const double bound = 2 * (2 + 1) * std::pow(2.0, -7);
  const double ref_loss = reference.at("loss").item<double>();
  std::printf("loss: bireco %.6f, PEFT %.6f\n", loss.item<double>(), ref_loss);
  EXPECT_LE(std::abs(loss.item<double>() - ref_loss), bound * std::abs(ref_loss));
  int compared = 0;
  double worst = 0;
  for (const auto& item : m->named_parameters()) {
    if (item.key().find(".lora_") == std::string::npos) continue;
    EXPECT_EQ(item.value().scalar_type(), torch::kFloat32) << item.key();
    const auto ref = reference.at("grad." + model::peft_name(item.key(), "FEATURE_EXTRACTION"));
    const auto& grad = item.value().grad();
    ASSERT_TRUE(grad.defined()) << item.key();
    EXPECT_EQ(grad.scalar_type(), torch::kFloat32) << item.key();
    const double scale = ref.abs().max().item<double>();
    ASSERT_GT(scale, 0) << item.key();
    const double diff = (grad - ref).abs().max().item<double>() / scale;
    worst = std::max(worst, diff);
    EXPECT_LE(diff, bound) << item.key();
    ++compared;
  }
  EXPECT_EQ(compared, 28);  // lora_A and lora_B of 7 projections x 2 layers
  std::printf(
      "adapter gradients: largest difference %.3g of the tensor's largest value (bound %.3g)\n",
      worst, bound);
}

}  // namespace
}  // namespace bireco::train
