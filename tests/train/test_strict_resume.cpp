// Strict resume: a checkpoint records the run's config and a fingerprint of its data files;
// resuming a run with another seed, sampler setting, schedule or data (even of the same size)
// is an error naming what changed, `--resume-changed` accepts it with a warning per change, and
// checkpoints written before the fingerprint still resume (with a warning).
#include <gtest/gtest.h>

#include <fstream>

#include "bireco/train/checkpoint.h"
#include "bireco/train/resume_check.h"
#include "bireco/train/trainer.h"
#include "test_support.h"
#include "tiny_run.h"

namespace bireco::train {
namespace {
namespace fs = std::filesystem;

// Two steps, checkpointed at step 1, on a private copy of the demo data.
class StrictResume : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = tmp_ / "scifact.jsonl";
    fs::copy_file(test::source_dir() / "data/demo/train/scifact.jsonl", data_);
    config_ = run_config();
    Trainer(config_).train();
    ASSERT_TRUE(is_complete_checkpoint(tmp_ / "out/step-1"));
  }
  config::StageConfig run_config() const {
    auto c = test::tiny_run_config(tmp_ / "out");
    c.data.train = {data_.string()};
    c.train.max_steps = 2;
    c.checkpoint.every = 1;
    return c;
  }
  std::string resume_error(const config::StageConfig& c) const {
    return test::error_of([&] { Trainer(c).resume_from(tmp_ / "out/step-1"); });
  }
  test::TempDir tmp_;
  fs::path data_;
  config::StageConfig config_;
};

TEST_F(StrictResume, TheSameRunResumes) {
  auto c = config_;
  c.checkpoint.dir = (tmp_ / "elsewhere").string();  // where outputs go is no difference
  c.train.log_every = 5;
  Trainer t(c);
  t.resume_from(tmp_ / "out/step-1");
  EXPECT_EQ(t.step(), 1);
}

TEST_F(StrictResume, ChangedSeedSamplerOrScheduleIsAnErrorNamingTheKey) {
  auto seed = config_;
  seed.train.seed = 4;
  std::string e = resume_error(seed);
  EXPECT_NE(e.find("--resume " + (tmp_ / "out/step-1").string() +
                   ": this run differs from the one that wrote the checkpoint:\n  train.seed: 3 at "
                   "the checkpoint, 4 now"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("pass --resume-changed to continue with these changes"), std::string::npos) << e;

  auto sampler = config_;
  sampler.data.homogeneous_batches = false;
  e = resume_error(sampler);
  EXPECT_NE(e.find("data.homogeneous_batches: true at the checkpoint, false now"),
            std::string::npos)
      << e;

  auto schedule = config_;
  schedule.schedule.warmup_steps = 2;
  schedule.optim.lr = 2e-3;
  e = resume_error(schedule);
  EXPECT_NE(e.find("schedule.warmup_steps: 1 at the checkpoint, 2 now"), std::string::npos) << e;
  EXPECT_NE(e.find("optim.lr: 0.001 at the checkpoint, 0.002 now"), std::string::npos) << e;
}

TEST_F(StrictResume, OtherDataOfTheSameSizeIsAnError) {
  std::string text = test::read_file(data_);
  const auto at = text.find("0-dimensional");
  ASSERT_NE(at, std::string::npos);
  text[at] = '1';  // same size, same record count
  test::write_file(data_, text);
  const std::string e = resume_error(config_);
  EXPECT_NE(e.find("data file 0 (scifact.jsonl): same size, other content"), std::string::npos)
      << e;
}

TEST_F(StrictResume, ResumeChangedAcceptsTheChanges) {
  auto c = config_;
  c.train.seed = 4;
  Trainer t(c);
  t.resume_from(tmp_ / "out/step-1", /*accept_changed=*/true);
  EXPECT_EQ(t.step(), 1);
  EXPECT_TRUE(t.train());
}

TEST_F(StrictResume, CheckpointWithoutFingerprintStillResumes) {
  // As written before data fingerprints: no data_files in state.json.
  const fs::path state = tmp_ / "out/step-1/trainer_state/state.json";
  nlohmann::json json = nlohmann::json::parse(test::read_file(state));
  json.erase("data_files");
  test::write_file(state, json.dump());
  Trainer t(config_);
  t.resume_from(tmp_ / "out/step-1");
  EXPECT_EQ(t.step(), 1);
  std::vector<std::string> notes;
  EXPECT_TRUE(run_differences(json["config"], nullptr, json["config"],
                              data_fingerprint(config_.data), &notes)
                  .empty());
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("records no data fingerprint (written by an older bireco)"),
            std::string::npos);
}

TEST(StrictResumeCli, ResumeChangedFlagTurnsTheErrorIntoWarnings) {
  test::TempDir tmp;
  const fs::path root = test::source_dir();
  const std::string config = (tmp / "run.json").string();
  test::write_file(config, R"({"stage": "reconstruction",
    "model": {"path": ")" + (root / "configs/demo/tiny-llama").string() +
                               R"(", "init": "random", "device": "cpu"},
    "text": {"max_length": 24, "template": "{text}", "add_eos": true},
    "data": {"train": [")" + (root / "data/demo/train/scifact.jsonl").string() +
                               R"("]},
    "train": {"batch_size": 4, "max_steps": 2, "seed": 3, "precision": "fp32"},
    "checkpoint": {"dir": ")" + (tmp / "out").string() +
                               R"(", "every": 1, "keep": 0}})");
  const std::string train = test::bireco_binary().string() + " train --config " + config;
  ASSERT_EQ(test::run_command(train + " --set train.max_steps=1").status, 0);
  auto r = test::run_command(train + " --resume auto");  // max_steps 2 now, 1 at the checkpoint
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("train.max_steps: 1 at the checkpoint, 2 now"), std::string::npos)
      << r.output;
  r = test::run_command(train + " --resume auto --resume-changed");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("--resume-changed: continuing with a changed run: train.max_steps: 1 at "
                          "the checkpoint, 2 now"),
            std::string::npos)
      << r.output;
  EXPECT_TRUE(is_complete_checkpoint(tmp / "out/final"));
}

}  // namespace
}  // namespace bireco::train
