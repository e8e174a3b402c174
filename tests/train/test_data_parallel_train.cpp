// Data parallel through the real entry points: `bireco launch` with 2 Gloo ranks of batch B
// ends with the same weights as one process of batch 2B, for stage I and for stage II with
// cross-rank negatives and LoRA, with and without gradient checkpointing and GradCache
// (TwoRanksEqualOneRank); a resumed 2-rank run equals the uninterrupted one; the shipped
// configs run on 2 ranks.
#include <gtest/gtest.h>

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
std::string stage_config(const fs::path& dir, int batch_size, const std::string& stage,
                         const std::string& model_extra = "", const std::string& extra = "") {
  const fs::path root = test::source_dir();
  const std::string file = (dir / (stage + "-b" + std::to_string(batch_size) + ".json")).string();
  test::write_file(file, R"({"stage": ")" + stage + R"(", )" + extra + R"(
    "model": {"path": ")" + (root / "configs/demo/tiny-llama").string() + R"(", "init": "random", "device": "cpu")" + model_extra + R"(},
    "text": {"max_length": 32, "template": "{text}", "add_eos": true},
    "data": {"train": [")" + (root / "data/demo/train/scifact.jsonl").string() + R"("], "default_instruction": "Retrieve"},
    "optim": {"lr": 1e-3, "weight_decay": 0.01},
    "train": {"batch_size": )" + std::to_string(batch_size) + R"(, "grad_accum": 2, "max_steps": 3, "seed": 5, "precision": "fp32"},
    "checkpoint": {"dir": ")" + (dir / ("out-b" + std::to_string(batch_size))).string() + R"(", "every": 0},
    "dist": {"timeout_s": 60}})");
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

// Trains 1 rank x batch 4 and 2 ranks x batch 2 with the same config; checks the final weights.
void expect_two_ranks_equal_one(const std::string& stage, const std::string& model_extra = "",
                                const std::string& extra = "") {
  test::TempDir tmp;
  const std::string bireco = test::bireco_binary().string();
  auto one = test::run_command(bireco + " train --config " +
                               stage_config(tmp.path(), 4, stage, model_extra, extra));
  ASSERT_EQ(one.status, 0) << one.output;
  auto two = test::run_command(bireco + " launch --nproc-per-node 2 --master-port " +
                               std::to_string(test::free_port()) + " -- train --config " +
                               stage_config(tmp.path(), 2, stage, model_extra, extra));
  ASSERT_EQ(two.status, 0) << two.output;

  const auto a = final_weights(tmp / "out-b4/final");
  const auto b = final_weights(tmp / "out-b2/final");
  ASSERT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].first, b[i].first);
    worst = std::max(worst, (a[i].second - b[i].second).abs().max().item<double>());
  }
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
