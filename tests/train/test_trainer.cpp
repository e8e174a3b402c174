// The trainer: schedules, accumulation, bit-exact resume, checkpoint layout and pruning,
// `--resume auto`, the lm stage, and `bireco train` end to end on the tiny demo model.
#include <gtest/gtest.h>

#include <map>

#include <cmath>
#include <fstream>

#include "bireco/config/load.h"
#include "bireco/train/checkpoint.h"
#include "bireco/train/run_stage.h"
#include "bireco/train/schedule.h"
#include "bireco/train/trainer.h"
#include "test_support.h"
#include "tiny_run.h"

namespace bireco::train {
namespace {
namespace fs = std::filesystem;

config::StageConfig tiny_config(const fs::path& out) { return test::tiny_run_config(out); }

std::vector<nlohmann::json> metrics_lines(const fs::path& dir) {
  std::ifstream in(dir / "metrics.jsonl");
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST(Schedule, ValuesMatchHandComputedOnes) {
  config::ScheduleConfig s;
  s.warmup_steps = 4;
  s.name = "linear";
  EXPECT_DOUBLE_EQ(lr_factor(s, 0, 12), 0.0);
  EXPECT_DOUBLE_EQ(lr_factor(s, 2, 12), 0.5);
  EXPECT_DOUBLE_EQ(lr_factor(s, 4, 12), 1.0);
  EXPECT_DOUBLE_EQ(lr_factor(s, 6, 12), 0.75);  // (12 - 6) / (12 - 4)
  EXPECT_DOUBLE_EQ(lr_factor(s, 12, 12), 0.0);
  s.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(lr_factor(s, 6, 12), 0.1 + 0.9 * 0.75);
  s.name = "cosine";
  s.min_lr_ratio = 0.0;
  EXPECT_NEAR(lr_factor(s, 8, 12), 0.5, 1e-15);                                    // halfway
  EXPECT_NEAR(lr_factor(s, 6, 12), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-15);      // 0.853553...
  EXPECT_NEAR(lr_factor(s, 12, 12), 0.0, 1e-15);
  s.name = "constant";
  EXPECT_DOUBLE_EQ(lr_factor(s, 1, 12), 0.25);
  EXPECT_DOUBLE_EQ(lr_factor(s, 9, 12), 1.0);
  s.name = "step";
  EXPECT_NE(test::error_of([&] { lr_factor(s, 0, 1); }).find("schedule.name"), std::string::npos);
}

// Two micro-batches of 4 accumulated equal one batch of 8: two optimizer steps at a non-zero
// learning rate (no warm-up), with gradient checkpointing on as in every shipped config.
// AdamW's eps is 1 here: with the usual 1e-8, an element whose gradient cancels to ~eps has
// its update g / (|g| + eps) swing by lr * dg / (4 eps), so float rounding of the gradient sum
// (~1e-10) alone moved one weight by 1.8e-6; with eps 1 the update is ~lr * g, which keeps
// rounding at ~1e-10 while a wrong accumulation (a lost or doubled micro-batch) still shows.
TEST(Trainer, AccumulatedMicroBatchesEqualOneLargerBatch) {
  test::TempDir tmp;
  auto small = tiny_config(tmp / "a");
  small.train.grad_accum = 2;
  auto large = tiny_config(tmp / "b");
  large.train.batch_size = 8;
  for (auto* c : {&small, &large}) {
    c->schedule.warmup_steps = 0;
    c->optim.lr = 0.1;
    c->optim.eps = 1.0;
    c->model.gradient_checkpointing = true;
  }
  Trainer a(small), b(large);
  std::map<std::string, torch::Tensor> start;
  for (const auto& p : a.model()->named_parameters()) start[p.key()] = p.value().detach().clone();
  for (int64_t step = 0; step < 2; ++step) {
    std::vector<data::PairRecord> records;
    for (int64_t i = 0; i < 8; ++i) records.push_back(a.dataset(0).read(8 * step + i));
    a.train_step({a.collate({records.begin(), records.begin() + 4}), a.collate({records.begin() + 4, records.end()})});
    b.train_step({b.collate(records)});
  }
  auto pb = b.model()->named_parameters();
  double moved = 0;
  for (const auto& p : a.model()->named_parameters()) {
    EXPECT_LT((p.value() - pb[p.key()]).abs().max().item<double>(), 1e-6) << p.key();
    moved = std::max(moved, (p.value() - start[p.key()]).abs().max().item<double>());
  }
  EXPECT_GT(moved, 1e-4) << "the steps did not move the weights: the comparison proves nothing";
}

TEST(Trainer, KilledAndResumedRunEndsBitIdenticalToUninterruptedRun) {
  test::TempDir tmp;
  auto whole = tiny_config(tmp / "whole");
  whole.checkpoint.every = 2;
  Trainer uninterrupted(whole);
  uninterrupted.train();

  auto second = tiny_config(tmp / "second");
  Trainer resumed(second);
  resumed.resume_from(tmp / "whole/step-2");
  EXPECT_EQ(resumed.step(), 2);
  resumed.train();
  auto expected = uninterrupted.model()->named_parameters();
  for (const auto& p : resumed.model()->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), expected[p.key()])) << p.key();
  }
}

TEST(Checkpoint, LayoutIsHfFolderPlusTrainerStateAndOnlyNewestKept) {
  test::TempDir tmp;
  auto c = tiny_config(tmp / "out");
  c.train.max_steps = 3;
  c.checkpoint.every = 1;
  c.checkpoint.keep = 2;
  Trainer trainer(c);
  trainer.train();
  const fs::path out = tmp / "out";
  EXPECT_FALSE(fs::exists(out / "step-1"));
  for (const char* dir : {"step-2", "step-3", "final"}) {
    for (const char* file : {"config.json", "model.safetensors", "tokenizer.model", "trainer_state/state.json",
                             "trainer_state/optimizer.safetensors", "trainer_state/rng.safetensors"}) {
      EXPECT_TRUE(fs::is_regular_file(out / dir / file)) << dir << "/" << file;
    }
  }
  for (const auto& entry : fs::directory_iterator(out))
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();  // no half-written folder left
  EXPECT_EQ(latest_checkpoint(out), out / "final");
  auto state = nlohmann::json::parse(test::read_file(out / "step-2/trainer_state/state.json"));
  EXPECT_EQ(state["step"], 2);
  EXPECT_EQ(state["sampler"]["batch"], 2);
  EXPECT_EQ(state["config"]["train"]["max_steps"], 3);
  const auto lines = metrics_lines(out);
  ASSERT_EQ(lines.size(), 3u);
  for (const char* key : {"step", "loss", "lr", "tokens_per_s", "loss_d2q", "loss_q2d", "accuracy", "recon_tokens"})
    EXPECT_TRUE(lines[2].contains(key)) << key;
  EXPECT_NEAR(lines[2]["loss"].get<double>(),
              0.8 * lines[2]["loss_d2q"].get<double>() + 0.2 * lines[2]["loss_q2d"].get<double>(), 1e-5);
}

TEST(RunStage, ResumeAutoStartsFreshWithoutCheckpointAndFinishesWithOne) {
  test::TempDir tmp;
  config::PlannedStage stage;
  stage.name = "tiny";
  stage.config = tiny_config(tmp / "out");
  stage.config.train.max_steps = 2;
  EXPECT_TRUE(latest_checkpoint(tmp / "out").empty());
  run_stage(stage, "auto");
  auto lines = metrics_lines(tmp / "out");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["step"], 1);
  run_stage(stage, "auto");  // final/ is at max_steps: nothing more to do
  EXPECT_EQ(metrics_lines(tmp / "out").size(), 2u);
}

TEST(Trainer, LmStageReadsTextLinesAndLowersItsLoss) {
  test::TempDir tmp;
  auto c = tiny_config(tmp / "lm");
  c.stage = "lm";
  c.data.train = {(test::source_dir() / "data/demo/corpus.jsonl").string()};
  c.data.format = "text";
  c.optim.lr = 3e-3;
  c.schedule.name = "constant";
  c.schedule.warmup_steps = 0;
  Trainer trainer(c);
  auto batches = trainer.next_micro_batches();
  const double first = trainer.train_step(batches).metrics.at("loss");
  double last = first;
  for (int i = 0; i < 5; ++i) last = trainer.train_step(batches).metrics.at("loss");
  EXPECT_NEAR(first, std::log(32000.0), 0.5);  // random init: about uniform
  EXPECT_LT(last, first - 0.5);
}

TEST(TrainCli, TrainsTinyConfigAndWritesMetrics) {
  test::TempDir tmp;
  const fs::path root = test::source_dir();
  const std::string config = (tmp / "stage1.json").string();
  test::write_file(config, R"({"stage": "reconstruction",
    "model": {"path": ")" + (root / "configs/demo/tiny-llama").string() + R"(", "init": "random", "device": "cpu"},
    "text": {"max_length": 64},
    "data": {"train": [")" + (root / "data/demo/train/scifact.jsonl").string() + R"("], "default_instruction": "Retrieve"},
    "train": {"batch_size": 4, "max_steps": 3, "precision": "fp32"},
    "checkpoint": {"dir": ")" + (tmp / "out").string() + R"(", "every": 0}})");
  auto r = test::run_command(test::bireco_binary().string() + " train --config " + config);
  ASSERT_EQ(r.status, 0) << r.output;
  const auto lines = metrics_lines(tmp / "out");
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& line : lines)
    for (const char* key : {"step", "loss", "lr", "tokens_per_s", "loss_d2q", "loss_q2d"}) EXPECT_TRUE(line.contains(key)) << key;
  EXPECT_EQ(lines.back()["step"], 3);
  EXPECT_TRUE(fs::is_regular_file(tmp / "out/final/model.safetensors"));
}

}  // namespace
}  // namespace bireco::train
