// Data parallel through the real entry points: `bireco launch` with 2 Gloo ranks of batch B
// ends with the same weights as one process of batch 2B, for stage I and for stage II with
// cross-rank negatives and LoRA, with and without gradient checkpointing and GradCache
// (TwoRanksEqualOneRank); the same with the optimizer state and gradients sharded over the 2
// ranks (ShardedTwoRanksEqualOneRank, dist.shard); a resumed 2-rank run equals the
// uninterrupted one, also when a sharded run resumes on 1 rank and back on 2; the shipped
// configs run on 2 ranks.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bireco/config/stage_config.h"
#include "bireco/model/load.h"
#include "bireco/model/safetensors.h"
#include "bireco/train/checkpoint.h"
#include "distributed/dist_test_support.h"
#include "test_support.h"

namespace bireco::train {
namespace {
namespace fs = std::filesystem;

// `extra` is spliced into the JSON object (stage-specific keys).
// `dist_extra` goes into "dist" (e.g. `, "shard": "optimizer"`).
std::string stage_config(const fs::path& dir, int batch_size, const std::string& stage,
                         const std::string& model_extra = "", const std::string& extra = "",
                         const std::string& dist_extra = "") {
  const fs::path root = test::source_dir();
  const std::string file = (dir / (stage + "-b" + std::to_string(batch_size) + ".json")).string();
  test::write_file(file, R"({"stage": ")" + stage + R"(", )" + extra + R"(
    "model": {"path": ")" + (root / "configs/demo/tiny-llama").string() +
                             R"(", "init": "random", "device": "cpu")" + model_extra + R"(},
    "text": {"max_length": 32, "template": "{text}", "add_eos": true},
    "data": {"train": [")" + (root / "data/demo/train/scifact.jsonl").string() +
                             R"("], "default_instruction": "Retrieve"},
    "optim": {"lr": 1e-3, "weight_decay": 0.01},
    "train": {"batch_size": )" +
                             std::to_string(batch_size) +
                             R"(, "grad_accum": 2, "max_steps": 3, "seed": 5, "precision": "fp32"},
    "checkpoint": {"dir": ")" +
                             (dir / ("out-b" + std::to_string(batch_size))).string() +
                             R"(", "every": 0},
    "dist": {"timeout_s": 60)" +
                             dist_extra + R"(}})");
  return file;
}

std::vector<std::pair<std::string, torch::Tensor>> final_weights(const fs::path& final_dir) {
  config::ModelConfig options;
  options.path = final_dir.string();
  options.device = "cpu";
  auto model = model::load(options, 0);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : model->named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

double max_difference(const std::vector<std::pair<std::string, torch::Tensor>>& a,
                      const std::vector<std::pair<std::string, torch::Tensor>>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    worst = std::max(worst, (a[i].second - b[i].second).abs().max().item<double>());
  }
  return worst;
}

// Trains 1 rank x batch 4 and 2 ranks x batch 2 with the same config (plus `two_rank_dist` in
// the 2-rank run's "dist"); checks the final weights.
void expect_two_ranks_equal_one(const std::string& stage, const std::string& model_extra = "",
                                const std::string& extra = "",
                                const std::string& two_rank_dist = "") {
  test::TempDir tmp;
  const std::string bireco = test::bireco_binary().string();
  auto one = test::run_command(bireco + " train --config " +
                               stage_config(tmp.path(), 4, stage, model_extra, extra));
  ASSERT_EQ(one.status, 0) << one.output;
  auto two =
      test::run_command(bireco + " launch --nproc-per-node 2 --master-port " +
                        std::to_string(test::free_port()) + " -- train --config " +
                        stage_config(tmp.path(), 2, stage, model_extra, extra, two_rank_dist));
  ASSERT_EQ(two.status, 0) << two.output;

  const auto a = final_weights(tmp / "out-b4/final");
  const auto b = final_weights(tmp / "out-b2/final");
  const double worst = max_difference(a, b);
  EXPECT_LT(worst, 1e-5) << "largest weight difference between 2 ranks x B and 1 rank x 2B";
  std::printf("max |2 ranks - 1 rank| over the final weights: %.3g\n", worst);
  // The run did change the weights (a vacuous pass would compare two untouched models).
  config::ModelConfig init;
  init.path = (test::source_dir() / "configs/demo/tiny-llama").string();
  init.init = "random";
  init.device = "cpu";
  auto start = model::load(init, 5);
  double moved = 0;
  for (const auto& [name, value] : a)
    moved = std::max(moved, (start->named_parameters()[name] - value).abs().max().item<double>());
  EXPECT_GT(moved, 1e-4);
  // Only rank 0 wrote metrics: one line per step.
  std::ifstream metrics(tmp / "out-b2/metrics.jsonl");
  int lines = 0;
  for (std::string line; std::getline(metrics, line);) ++lines;
  EXPECT_EQ(lines, 3);
}

// The runs, as named config overrides (torchtitan's integration-test table): every one trains
// 3 optimizer steps of grad_accum 2 at lr 1e-3. LoRA runs use dropout 0 for the equality (each
// process draws its own masks); dropout > 0 runs on 2 ranks in the resume test below.
struct DataParallelCase {
  const char* name;
  const char* stage;
  const char* model_extra;  // spliced into "model"
  const char* extra;        // spliced into the top level
};

constexpr const char* kLora = R"(, "lora": {"r": 4, "alpha": 8, "dropout": 0.0})";
constexpr const char* kCheckpointedLora =
    R"(, "gradient_checkpointing": true, "lora": {"r": 4, "alpha": 8, "dropout": 0.0})";
// Each rank scores its queries against both ranks' positives and hard negatives, so the
// negatives equal those of the single process.
constexpr const char* kCrossRank =
    R"("objective": {"contrastive": {"hard_negatives": 1, "gather_across_ranks": true}},)";

const DataParallelCase kCases[] = {
    {"StageOneFullFineTuning", "reconstruction", "", ""},
    // Gradient checkpointing recomputes each layer in backward, so a layer used twice in a step
    // (stage I encodes, then reconstructs through the same layers) has its gradient accumulated
    // once per use: each parameter must be reduced after its last contribution, not its first.
    {"StageOneCheckpointing", "reconstruction", R"(, "gradient_checkpointing": true)", ""},
    {"StageTwoLoraCrossRankNegatives", "contrastive", kLora, kCrossRank},
    {"StageTwoLoraCheckpointing", "contrastive", kCheckpointedLora, kCrossRank},
    // GradCache (embeddings in chunks without graph, then the loss, then each chunk re-run with
    // its embedding gradient): several backward passes per micro-step, reduced as one.
    {"StageTwoGradCacheLoraCheckpointing", "contrastive", kCheckpointedLora,
     R"("objective": {"contrastive": {"hard_negatives": 1, "gather_across_ranks": true, "gradcache_chunk": 1}},)"},
};

void PrintTo(const DataParallelCase& c, std::ostream* os) { *os << c.name; }

class TwoRanksEqualOneRank : public ::testing::TestWithParam<DataParallelCase> {};

TEST_P(TwoRanksEqualOneRank, AfterThreeStepsOfTwoMicroBatches) {
  expect_two_ranks_equal_one(GetParam().stage, GetParam().model_extra, GetParam().extra);
}

INSTANTIATE_TEST_SUITE_P(DataParallelTrain, TwoRanksEqualOneRank, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<DataParallelCase>& info) {
                           return info.param.name;
                         });

// The same runs with the optimizer state sharded over the 2 ranks (ZeRO-1) or the gradients too
// (ZeRO-2), against one unsharded process. 10 KiB buckets: the tiny model's trainable tensors
// spread over many buckets, most of them padded, so a rank's shard holds pieces of several
// parameters and parameters are split between the ranks. Clipping (optim.clip_grad_norm 1) is
// active, so the norm must be the global one.
constexpr const char* kShardOptimizer = R"(, "shard": "optimizer", "bucket_mb": 0.01)";
constexpr const char* kShardGradients = R"(, "shard": "gradients", "bucket_mb": 0.01)";

struct ShardedCase {
  const char* name;
  const char* stage;
  const char* model_extra;
  const char* extra;
  const char* dist;
};

const ShardedCase kShardedCases[] = {
    {"StageOneShardOptimizer", "reconstruction", "", "", kShardOptimizer},
    {"StageOneShardGradients", "reconstruction", "", "", kShardGradients},
    {"StageOneShardGradientsCheckpointing", "reconstruction", R"(, "gradient_checkpointing": true)",
     "", kShardGradients},
    {"StageTwoLoraShardOptimizer", "contrastive", kLora, kCrossRank, kShardOptimizer},
    {"StageTwoGradCacheLoraCheckpointingShardGradients", "contrastive", kCheckpointedLora,
     R"("objective": {"contrastive": {"hard_negatives": 1, "gather_across_ranks": true, "gradcache_chunk": 1}},)",
     kShardGradients},
};

void PrintTo(const ShardedCase& c, std::ostream* os) { *os << c.name; }

class ShardedTwoRanksEqualOneRank : public ::testing::TestWithParam<ShardedCase> {};

TEST_P(ShardedTwoRanksEqualOneRank, AfterThreeStepsOfTwoMicroBatches) {
  const auto& c = GetParam();
  expect_two_ranks_equal_one(c.stage, c.model_extra, c.extra, c.dist);
}

INSTANTIATE_TEST_SUITE_P(DataParallelTrain, ShardedTwoRanksEqualOneRank,
                         ::testing::ValuesIn(kShardedCases),
                         [](const ::testing::TestParamInfo<ShardedCase>& info) {
                           return info.param.name;
                         });

// Checkpoints of a sharded run hold the whole state in the unsharded format: a ZeRO-1 run on 2
// ranks resumed on 1 unsharded rank (global batch kept: batch 4 instead of 2), and that run's
// checkpoint resumed on 2 sharded ranks again, end where the uninterrupted 2-rank run ends.
TEST(DataParallelTrain, ShardedRunResumesAcrossWorldSizesLikeUninterrupted) {
  test::TempDir tmp;
  const std::string bireco = test::bireco_binary().string();
  const std::string schedule =
      " --set train.max_steps=6 --set checkpoint.every=2 --set checkpoint.keep=0";
  const std::string two = bireco + " launch --nproc-per-node 2 --master-port " +
                          std::to_string(test::free_port()) + " -- train --config " +
                          stage_config(tmp.path(), 2, "reconstruction", "", "", kShardOptimizer) +
                          schedule;
  const std::string one =
      bireco + " train --config " + stage_config(tmp.path(), 4, "reconstruction") + schedule;
  auto whole = test::run_command(two);
  ASSERT_EQ(whole.status, 0) << whole.output;
  const auto uninterrupted = final_weights(tmp / "out-b2/final");

  // 2 -> 1: the 1-rank run continues from the sharded run's step-2.
  fs::create_directories(tmp / "out-b4");
  fs::copy(tmp / "out-b2/step-2", tmp / "out-b4/step-2", fs::copy_options::recursive);
  auto on_one = test::run_command(one + " --resume " + (tmp / "out-b4/step-2").string() +
                                  " --resume-changed");
  ASSERT_EQ(on_one.status, 0) << on_one.output;
  const double two_to_one = max_difference(final_weights(tmp / "out-b4/final"), uninterrupted);
  EXPECT_LT(two_to_one, 1e-5) << "2 sharded ranks -> 1 rank vs uninterrupted";

  // 1 -> 2: the sharded run continues from the 1-rank run's step-4.
  fs::remove_all(tmp / "out-b2");
  fs::create_directories(tmp / "out-b2");
  fs::copy(tmp / "out-b4/step-4", tmp / "out-b2/step-4", fs::copy_options::recursive);
  auto back = test::run_command(two + " --resume " + (tmp / "out-b2/step-4").string() +
                                " --resume-changed");
  ASSERT_EQ(back.status, 0) << back.output;
  ASSERT_NE(back.output.find("at step 4"), std::string::npos) << back.output;
  const double one_to_two = max_difference(final_weights(tmp / "out-b2/final"), uninterrupted);
  EXPECT_LT(one_to_two, 1e-5) << "1 rank -> 2 sharded ranks vs uninterrupted";
  std::printf("max |resumed - uninterrupted|: 2 -> 1 ranks %.3g, 1 -> 2 ranks %.3g\n", two_to_one,
              one_to_two);
}

// The gradient norm of each logged step in `dir`/metrics.jsonl.
std::vector<double> grad_norms(const fs::path& dir) {
  std::vector<double> out;
  std::ifstream in(dir / "metrics.jsonl");
  for (std::string line; std::getline(in, line);)
    out.push_back(nlohmann::json::parse(line).at("grad_norm"));
  return out;
}

// Sharded bf16-mixed computes with a bf16 copy and keeps the fp32 master weights sharded. The
// copy's gradients reach the shards (the first step's gradient norm is one unsharded
// bf16-mixed process's, up to bf16 rounding; the casts between master and compute dtype give
// the parameters new gradient accumulators, which must be hooked again); the checkpoint's HF
// files hold the fp32 master weights, not the bf16 copy; and a run resumed from step-2 (master
// weights reloaded at full precision, moments re-sharded) ends exactly where the uninterrupted
// run ends.
TEST(DataParallelTrain, ShardedBf16MixedTrainsSavesAndResumesTheFp32MasterWeights) {
  test::TempDir tmp;
  const std::string mixed =
      " --set train.precision=bf16-mixed --set train.max_steps=4 --set checkpoint.every=2 --set "
      "checkpoint.keep=0";
  const std::string command =
      test::bireco_binary().string() + " launch --nproc-per-node 2 --master-port " +
      std::to_string(test::free_port()) + " -- train --config " +
      stage_config(tmp.path(), 2, "reconstruction", "", "", kShardGradients) + mixed;
  auto whole = test::run_command(command);
  ASSERT_EQ(whole.status, 0) << whole.output;
  auto unsharded = test::run_command(test::bireco_binary().string() + " train --config " +
                                     stage_config(tmp.path(), 4, "reconstruction") + mixed);
  ASSERT_EQ(unsharded.status, 0) << unsharded.output;
  const fs::path out = tmp / "out-b2";
  const auto sharded_norms = grad_norms(out), unsharded_norms = grad_norms(tmp / "out-b4");
  ASSERT_EQ(sharded_norms.size(), 4u);
  ASSERT_EQ(unsharded_norms.size(), 4u);
  EXPECT_GT(unsharded_norms[0], 0);
  EXPECT_NEAR(sharded_norms[0], unsharded_norms[0], 0.05 * unsharded_norms[0]);
  std::printf("first-step gradient norm: sharded bf16-mixed %.6g, unsharded %.6g\n",
              sharded_norms[0], unsharded_norms[0]);
  const auto saved = model::read_safetensors(out / "final/model.safetensors");
  double off_bf16 = 0;
  for (const auto& [name, tensor] : saved) {
    ASSERT_EQ(tensor.scalar_type(), torch::kFloat32) << name;
    off_bf16 = std::max(
        off_bf16,
        (tensor - tensor.to(torch::kBFloat16).to(torch::kFloat32)).abs().max().item<double>());
  }
  EXPECT_GT(off_bf16, 0)
      << "every saved weight is a bf16 value: the compute copy was written, not the master";
  const auto uninterrupted = final_weights(out / "final");
  fs::remove_all(out / "final");
  fs::remove_all(out / "step-4");
  auto resumed = test::run_command(command + " --resume " + (out / "step-2").string());
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  const double difference = max_difference(final_weights(out / "final"), uninterrupted);
  EXPECT_EQ(difference, 0) << "resumed bf16-mixed sharded run vs uninterrupted";
}

// The shipped Llama-3.2-1B configs (checkpointing, bf16; stage II with LoRA dropout 0.05) run
// under `bireco launch` on 2 Gloo ranks, on the tiny model, stage II from stage I's final/.
TEST(DataParallelTrain, ShippedLlama32OneBConfigsRunThreeStepsOnTwoRanks) {
  test::TempDir tmp;
  const fs::path root = test::source_dir();
  const std::string small =
      " --set model.path=" + (root / "configs/demo/tiny-llama").string() +
      " --set model.init=random --set 'data.train=[" +
      (root / "data/demo/train/scifact.jsonl").string() +
      "]' --set train.batch_size=2 --set train.max_steps=3 --set text.max_length=64"
      " --set schedule.warmup_steps=1 --set data.instructions=" +
      (root / "configs/instructions/e5.json").string();
  for (const std::string stage : {"stage1", "stage2"}) {
    std::string command = test::bireco_binary().string() +
                          " launch --nproc-per-node 2 --master-port " +
                          std::to_string(test::free_port()) + " -- train --config " +
                          (root / "configs" / stage / "llama-3.2-1b.yaml").string() + small +
                          " --set checkpoint.dir=" + (tmp / stage).string();
    if (stage == "stage2")
      command +=
          " --set model.path=" + (tmp / "stage1/final").string() + " --set model.init=pretrained";
    const auto run = test::run_command(command);
    ASSERT_EQ(run.status, 0) << run.output;
    EXPECT_NE(run.output.find("step 3/3"), std::string::npos) << run.output;
    EXPECT_TRUE(is_complete_checkpoint(tmp / stage / "final")) << stage;
  }
}

// Each rank draws its own LoRA dropout masks, and its queries, padded to its own longest one,
// consume their own amount of randomness: a resumed 2-rank run equals the uninterrupted one only
// when every rank's generators are saved and restored (rank 1 restoring rank 0's would not).
TEST(DataParallelTrain, ResumedTwoRankLoraDropoutRunEqualsUninterruptedBitForBit) {
  test::TempDir tmp;
  const std::string config = stage_config(
      tmp.path(), 2, "contrastive",
      R"(, "gradient_checkpointing": true, "lora": {"r": 4, "alpha": 8, "dropout": 0.1})",
      R"("objective": {"contrastive": {"hard_negatives": 1, "gather_across_ranks": true}},)");
  const std::string command =
      test::bireco_binary().string() + " launch --nproc-per-node 2 --master-port " +
      std::to_string(test::free_port()) + " -- train --config " + config +
      " --set train.max_steps=4 --set checkpoint.every=2 --set text.max_length=96";
  auto whole = test::run_command(command);
  ASSERT_EQ(whole.status, 0) << whole.output;
  const fs::path out = tmp / "out-b2";
  const auto uninterrupted = final_weights(out / "final");

  // The ranks' generators did diverge by step 2, so restoring rank 0's everywhere would show.
  const auto rng = model::read_safetensors(out / "step-2/trainer_state/rng.safetensors");
  ASSERT_TRUE(rng.count("cpu_generator") && rng.count("rank1.cpu_generator"));
  EXPECT_FALSE(torch::equal(rng.at("cpu_generator"), rng.at("rank1.cpu_generator")));

  fs::remove_all(out / "final");
  fs::remove_all(out / "step-4");
  auto resumed = test::run_command(command + " --resume auto");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  ASSERT_NE(resumed.output.find("step-2 at step 2"), std::string::npos) << resumed.output;
  const auto after = final_weights(out / "final");
  ASSERT_EQ(after.size(), uninterrupted.size());
  int differing = 0;
  for (size_t i = 0; i < after.size(); ++i)
    if (!torch::equal(after[i].second, uninterrupted[i].second)) ++differing;
  EXPECT_EQ(differing, 0) << "tensors of the resumed run that differ from the uninterrupted run's";
}

}  // namespace
}  // namespace bireco::train
