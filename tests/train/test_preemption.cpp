// Pre-emption and numerical guards: SIGTERM / SIGUSR1 to `bireco train` (one process and two
// ranks under `bireco launch`) save step-N and exit 0, and resuming ends bit-identical to an
// uninterrupted run; a repeated signal (srun + launch) still saves once, a late one or one
// outside the training loop exits at once; a waiting rendezvous says whom it waits for and ends
// on SIGTERM; a run stopped between its last step-N and final/ writes final/ on resume;
// non-finite losses and gradient norms skip the step without touching the weights, and too many
// in a row abort naming the last good checkpoint.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <limits>

#include "bireco/model/safetensors.h"
#include "bireco/train/checkpoint.h"
#include "bireco/train/stop_signal.h"
#include "bireco/train/trainer.h"
#include "distributed/dist_test_support.h"
#include "test_support.h"
#include "tiny_run.h"

namespace bireco::train {
namespace {
namespace fs = std::filesystem;

config::StageConfig tiny_config(const fs::path& out) { return test::tiny_run_config(out); }

// The same run as a config file for `bireco train`.
std::string config_file(const fs::path& dir, const std::string& name, int max_steps) {
  const fs::path root = test::source_dir();
  const std::string file = (dir / (name + ".json")).string();
  test::write_file(file, R"({"stage": "reconstruction",
    "model": {"path": ")" + (root / "configs/demo/tiny-llama").string() + R"(", "init": "random", "device": "cpu"},
    "text": {"max_length": 24, "template": "{text}", "add_eos": true},
    "data": {"train": [")" + (root / "data/demo/train/scifact.jsonl").string() + R"("], "default_instruction": "Retrieve"},
    "optim": {"lr": 1e-3},
    "schedule": {"warmup_steps": 1},
    "train": {"batch_size": 4, "max_steps": )" + std::to_string(max_steps) + R"(, "seed": 3, "precision": "fp32"},
    "checkpoint": {"dir": ")" + (dir / name).string() + R"(", "every": 0, "keep": 0},
    "dist": {"timeout_s": 60}})");
  return file;
}

// Starts `command` in the background, waits until <out>/metrics.jsonl holds a line (a step is
// done), runs the shell lines `signal` ($pid: the command), and prints "status=N" when it exits.
test::TimedResult signal_after_first_step(const fs::path& dir, const std::string& command, const fs::path& out,
                                          const std::string& signal) {
  const std::string metrics = (out / "metrics.jsonl").string();
  std::string script = command + " > " + (dir / "run.log").string() + " 2>&1 & pid=$!\n" +
                       "for i in $(seq 1200); do [ -s " + metrics + " ] && break; sleep 0.05; done\n";
  script += signal + "\nwait $pid; echo status=$?\n";
  test::write_file(dir / "signal.sh", script);
  auto r = test::run_timed("/bin/sh " + (dir / "signal.sh").string(), 120);
  r.result.output += test::read_file(dir / "run.log");
  return r;
}

int64_t step_of_dir(const fs::path& dir) { return std::stoll(dir.filename().string().substr(5)); }

// The step-N folders under `out`, complete or not.
std::vector<fs::path> step_dirs(const fs::path& out) {
  std::vector<fs::path> dirs;
  for (const auto& entry : fs::directory_iterator(out))
    if (entry.path().filename().string().rfind("step-", 0) == 0) dirs.push_back(entry.path());
  return dirs;
}

// One uninterrupted 4-step run, shared by the signal tests (its final weights are the reference).
class StopSignal : public ::testing::TestWithParam<const char*> {
 protected:
  static void SetUpTestSuite() {
    reference_ = new test::TempDir;
    const auto r = test::run_command(test::bireco_binary().string() + " train --config " +
                                     config_file(reference_->path(), "whole", 4));
    ASSERT_EQ(r.status, 0) << r.output;
  }
  static void TearDownTestSuite() {
    delete reference_;
    reference_ = nullptr;
  }
  static fs::path reference_final() { return *reference_ / "whole/final/model.safetensors"; }
  static test::TempDir* reference_;
};
test::TempDir* StopSignal::reference_ = nullptr;

TEST_P(StopSignal, SavesStepExitsZeroAndResumeEndsBitIdentical) {
  const std::string signal = GetParam();
  test::TempDir tmp;
  const std::string config = config_file(tmp.path(), "run", 4);
  const fs::path out = tmp / "run";
  const auto r = signal_after_first_step(tmp.path(), test::bireco_binary().string() + " train --config " + config,
                                         out, "kill -" + signal + " $pid");
  ASSERT_NE(r.result.output.find("status=0"), std::string::npos) << r.result.output;
  EXPECT_NE(r.result.output.find("received SIG" + signal + ": saved "), std::string::npos) << r.result.output;
  EXPECT_FALSE(fs::exists(out / "final")) << "stopped before the end: no final/";
  const auto dirs = step_dirs(out);
  ASSERT_EQ(dirs.size(), 1u) << r.result.output;
  EXPECT_TRUE(is_complete_checkpoint(dirs[0]));
  EXPECT_LT(step_of_dir(dirs[0]), 4);

  const auto resumed = test::run_command(test::bireco_binary().string() + " train --config " + config + " --resume auto");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + dirs[0].string()), std::string::npos) << resumed.output;
  const std::string expected = test::read_file(reference_final());
  ASSERT_FALSE(expected.empty());
  EXPECT_TRUE(test::read_file(out / "final/model.safetensors") == expected)
      << "final weights differ from the uninterrupted run's";
}

INSTANTIATE_TEST_SUITE_P(TermAndUsr1, StopSignal, ::testing::Values("TERM", "USR1"));

// Under `srun` + `bireco launch` a worker gets the step's SIGTERM and the launcher's copy
// milliseconds apart. Before, the second one `_exit`ed the worker without a checkpoint.
TEST(Preemption, RepeatedSignalWithinTheWindowStillSavesOnce) {
  test::TempDir tmp;
  const fs::path out = tmp / "run";
  const auto r = signal_after_first_step(
      tmp.path(),
      test::bireco_binary().string() + " train --config " + config_file(tmp.path(), "run", 50), out,
      // Two repeats 20 ms apart: each delivered on its own, both before the step and the save end.
      "kill -TERM $pid; sleep 0.02; kill -TERM $pid; sleep 0.02; kill -TERM $pid");
  ASSERT_NE(r.result.output.find("status=0"), std::string::npos) << r.result.output;
  EXPECT_NE(r.result.output.find("stop signal repeated within the repeat window"),
            std::string::npos)
      << r.result.output;
  const auto dirs = step_dirs(out);
  ASSERT_EQ(dirs.size(), 1u) << r.result.output;
  EXPECT_TRUE(is_complete_checkpoint(dirs[0]));
  EXPECT_FALSE(fs::exists(out / "final"));
}

// The handler alone (a forked child per case): a repeat after the window ends the process at
// once, and outside the training loop the first signal does (nothing to save).
void raise_twice(double window_s, double pause_s) {
  install_stop_handlers(window_s);
  set_stop_mode(StopMode::kSave);
  ::raise(SIGTERM);
  if (stop_requested() != SIGTERM) std::_Exit(3);
  ::usleep(static_cast<useconds_t>(pause_s * 1e6));
  ::raise(SIGTERM);
  std::_Exit(stop_requested() == SIGTERM ? 0 : 4);  // still running: the repeat was absorbed
}

TEST(PreemptionDeathTest, RepeatAfterTheWindowExitsAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(raise_twice(0.1, 0.3), ::testing::ExitedWithCode(128 + SIGTERM),
              "second stop signal, exiting at once");
  EXPECT_EXIT(raise_twice(5, 0.05), ::testing::ExitedWithCode(0),
              "repeated within the repeat window");
}

TEST(PreemptionDeathTest, SignalOutsideTheTrainingLoopExitsAtOnce) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        install_stop_handlers();
        set_stop_mode(StopMode::kExit);
        ::raise(SIGUSR1);
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(128 + SIGUSR1), "outside the training loop");
}

// A rank whose peers never come (rank 0 of 3 here, as a plain `bireco train` in an sbatch shell
// was before the step-id check): it says whom it waits for and how long, and SIGTERM ends it at
// once instead of after dist.timeout_s (60 s). Before, it was silent and ignored SIGTERM.
TEST(Preemption, RendezvousSaysWhomItWaitsForAndSigtermEndsIt) {
  for (const char* rank : {"0", "2"}) {
    test::TempDir tmp;
    const std::string log = (tmp / "run.log").string();
    const std::string script =
        "RANK=" + std::string(rank) +
        " WORLD_SIZE=3 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(test::free_port()) +
        " " + test::bireco_binary().string() + " train --config " +
        config_file(tmp.path(), "run", 4) + " > " + log + " 2>&1 & pid=$!\n" +
        "for i in $(seq 400); do grep -q 'waited 2 s' " + log + " && break; sleep 0.05; done\n" +
        "kill -TERM $pid; wait $pid; echo status=$?\n";
    test::write_file(tmp / "rendezvous.sh", script);
    auto r = test::run_timed("/bin/sh " + (tmp / "rendezvous.sh").string(), 90);
    const std::string output = r.result.output + test::read_file(log);
    EXPECT_NE(output.find("status=143"), std::string::npos) << output;
    EXPECT_LT(r.seconds, 15) << "SIGTERM did not end the rendezvous\n" << output;
    if (std::string(rank) == "0") {
      EXPECT_NE(output.find("rank 0 of 3 waiting at 127.0.0.1:"), std::string::npos) << output;
      EXPECT_NE(output.find("for rank(s) 1, 2 (waited 1 s of 60 s)"), std::string::npos) << output;
    } else {
      EXPECT_NE(output.find("rank 2 of 3 waiting for rank 0's TCPStore at 127.0.0.1:"),
                std::string::npos)
          << output;
    }
    EXPECT_NE(output.find("(waited 2 s of 60 s)"), std::string::npos) << output;
    EXPECT_NE(output.find("outside the training loop"), std::string::npos) << output;
  }
}

TEST(Preemption, TwoRanksUnderLaunchSaveTheSameStepAndExitZero) {
  test::TempDir tmp;
  const fs::path out = tmp / "run";
  const std::string command = test::launch_command(2, "--log-all-ranks train --config " +
                                                          config_file(tmp.path(), "run", 50));
  const auto r = signal_after_first_step(tmp.path(), command, out, "kill -TERM $pid");
  ASSERT_NE(r.result.output.find("status=0"), std::string::npos) << r.result.output;
  const auto dirs = step_dirs(out);
  ASSERT_EQ(dirs.size(), 1u) << r.result.output;
  EXPECT_TRUE(is_complete_checkpoint(dirs[0]));
  // Each rank logs its own save (the launcher prefixes every worker line with its rank).
  const std::string saved = "received SIGTERM: saved " + dirs[0].string() + ",";
  for (const char* rank : {"[rank 0] ", "[rank 1] "}) {
    bool found = false;
    for (size_t at = r.result.output.find(rank); at != std::string::npos; at = r.result.output.find(rank, at + 1)) {
      const size_t end = r.result.output.find('\n', at);
      const std::string text = r.result.output.substr(at, end - at);
      found = found || text.find(saved) != std::string::npos;
    }
    EXPECT_TRUE(found) << rank << saved << "\n" << r.result.output;
  }
}

// What srun does at a time limit or scancel: every process of the step gets SIGTERM (here: each
// worker directly, then the launcher, which forwards its own).
TEST(Preemption, TwoRanksUnderLaunchSaveWhenSignalledDirectlyAndForwarded) {
  test::TempDir tmp;
  const fs::path out = tmp / "run";
  const std::string command = test::launch_command(
      2, "--log-all-ranks train --config " + config_file(tmp.path(), "run", 50));
  const auto r = signal_after_first_step(
      tmp.path(), command, out,
      "for child in $(pgrep -P $pid); do kill -TERM $child; done; sleep 0.03; kill -TERM $pid");
  ASSERT_NE(r.result.output.find("status=0"), std::string::npos) << r.result.output;
  const auto dirs = step_dirs(out);
  ASSERT_EQ(dirs.size(), 1u) << r.result.output;
  EXPECT_TRUE(is_complete_checkpoint(dirs[0]));
  EXPECT_EQ(r.result.output.find("exiting at once"), std::string::npos) << r.result.output;
}

TEST(Preemption, TwoRanksStopWithAnErrorWhenRankZeroCannotSave) {
  // A file-size limit of 256 KiB (the copied 490 KiB tokenizer.model cannot be written) makes
  // rank 0's final save fail. Before, rank 1 then waited at the barrier until the timeout;
  // now both ranks stop with an error, at once, and nothing incomplete counts as a checkpoint.
  test::TempDir tmp;
  const fs::path out = tmp / "run";
  const auto r = test::run_timed("sh -c 'ulimit -f 256; " +
                                     test::launch_command(2, "--log-all-ranks train --config " +
                                                                 config_file(tmp.path(), "run", 2)) +
                                     "'",
                                 50);
  EXPECT_NE(r.result.status, 0) << r.result.output;
  EXPECT_LT(r.seconds, 40) << "a rank waited for the failed save (dist.timeout_s is 60)\n" << r.result.output;
  EXPECT_NE(r.result.output.find("File too large"), std::string::npos) << r.result.output;
  EXPECT_NE(r.result.output.find("failed on rank 0"), std::string::npos) << r.result.output;
  EXPECT_TRUE(latest_checkpoint(out).empty());
}

TEST(Preemption, ResumeAtTheLastStepWritesTheMissingFinal) {
  // Killed between step-<max_steps>/ and final/: resuming writes final/ instead of nothing.
  test::TempDir tmp;
  auto c = tiny_config(tmp / "out");
  c.train.max_steps = 2;
  c.checkpoint.every = 1;
  Trainer(c).train();
  const std::string expected = test::read_file(tmp / "out/final/model.safetensors");
  fs::remove_all(tmp / "out/final");
  Trainer resumed(c);
  resumed.resume_from(tmp / "out/step-2");
  EXPECT_TRUE(resumed.train());
  ASSERT_TRUE(is_complete_checkpoint(tmp / "out/final"));
  EXPECT_TRUE(test::read_file(tmp / "out/final/model.safetensors") == expected);
}

// Every parameter, cloned.
std::map<std::string, torch::Tensor> snapshot(Trainer& t) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : t.model()->named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

bool unchanged(Trainer& t, const std::map<std::string, torch::Tensor>& before) {
  for (const auto& p : t.model()->named_parameters())
    if (!torch::equal(p.value(), before.at(p.key()))) return false;
  return true;
}

TEST(NonFiniteGuard, InfiniteLossSkipsStepAndLeavesWeightsUnchanged) {
  test::TempDir tmp;
  Trainer t(tiny_config(tmp / "out"));
  const auto batches = t.next_micro_batches();
  t.train_step(batches);  // warmup step (lr 0): AdamW state exists from here on
  // Norm weights of +inf: the hidden states and then the loss are no longer finite.
  std::map<std::string, torch::Tensor> saved;
  {
    torch::NoGradGuard no_grad;
    for (auto& p : t.model()->named_parameters())
      if (p.key().find("norm") != std::string::npos) {
        saved[p.key()] = p.value().clone();
        p.value().fill_(std::numeric_limits<float>::infinity());
      }
  }
  ASSERT_FALSE(saved.empty());
  const auto before = snapshot(t);
  const StepResult r = t.train_step(batches);
  EXPECT_TRUE(r.skipped);
  EXPECT_FALSE(std::isfinite(r.metrics.at("loss")));
  EXPECT_EQ(t.step(), 2) << "a skipped step still counts";
  EXPECT_TRUE(unchanged(t, before));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : t.model()->named_parameters())
      if (saved.count(p.key())) p.value().copy_(saved[p.key()]);
  }
  const auto restored = snapshot(t);
  const StepResult next = t.train_step(batches);
  EXPECT_FALSE(next.skipped);
  EXPECT_TRUE(std::isfinite(next.metrics.at("loss")));
  EXPECT_FALSE(unchanged(t, restored)) << "a finite step after a skipped one trains again";
}

TEST(NonFiniteGuard, InfiniteGradientNormSkipsStepAndLeavesWeightsUnchanged) {
  test::TempDir tmp;
  Trainer t(tiny_config(tmp / "out"));
  const auto batches = t.next_micro_batches();
  auto& p = t.model()->named_parameters().begin()->value();
  p.register_hook([](const torch::Tensor& g) { return g * std::numeric_limits<float>::infinity(); });
  const auto before = snapshot(t);
  const StepResult r = t.train_step(batches);
  EXPECT_TRUE(r.skipped);
  EXPECT_TRUE(std::isfinite(r.metrics.at("loss"))) << "only the gradient is broken";
  EXPECT_FALSE(std::isfinite(r.grad_norm));
  EXPECT_TRUE(unchanged(t, before));
}

// 10 steps, a checkpoint every 2, at most 2 non-finite steps in a row.
config::StageConfig skip_limited_config(const fs::path& out) {
  auto c = tiny_config(out);
  c.train.max_steps = 10;
  c.train.max_skipped_steps = 2;
  c.checkpoint.every = 2;
  return c;
}

// Steps 1-2 train; from step 3 on every gradient is infinite.
void poison_gradients_after_step_2(Trainer& t) {
  auto& p = t.model()->named_parameters().begin()->value();
  const Trainer* trainer = &t;
  p.register_hook([trainer](const torch::Tensor& g) {
    return trainer->step() >= 2 ? g * std::numeric_limits<float>::infinity() : g;
  });
}

TEST(NonFiniteGuard, MoreThanMaxSkippedInARowAbortsNamingLastGoodCheckpoint) {
  test::TempDir tmp;
  Trainer t(skip_limited_config(tmp / "out"));
  poison_gradients_after_step_2(t);
  const std::string error = test::error_of([&] { t.train(); });
  EXPECT_NE(error.find("train: 3 consecutive non-finite steps (last: grad_norm="), std::string::npos) << error;
  EXPECT_NE(error.find("at step 5"), std::string::npos) << error;
  EXPECT_NE(error.find("last good checkpoint: " + (tmp / "out/step-4").string()), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(tmp / "out/final"));
  EXPECT_FALSE(fs::exists(tmp / "out/step-6"));
  std::ifstream in(tmp / "out/metrics.jsonl");
  std::vector<int64_t> skipped;
  for (std::string line; std::getline(in, line);) skipped.push_back(nlohmann::json::parse(line)["skipped_steps"]);
  EXPECT_EQ(skipped, (std::vector<int64_t>{0, 0, 1, 1}));
}

TEST(NonFiniteGuard, ResumedRunAbortsAtTheSameStepAsAnUninterruptedOne) {
  test::TempDir tmp;
  const auto c = skip_limited_config(tmp / "out");
  // Steps 3 and 4 skip, step 5 is the third in a row and aborts; step-4 saves the two skips
  // it follows.
  {
    Trainer t(c);
    poison_gradients_after_step_2(t);
    EXPECT_NE(test::error_of([&] { t.train(); }).find("at step 5"), std::string::npos);
  }
  EXPECT_EQ(read_trainer_state(tmp / "out/step-4").consecutive_skips, 2);
  Trainer resumed(c);
  resumed.resume_from(tmp / "out/step-4");
  poison_gradients_after_step_2(resumed);
  // Restarting the count would allow two more skips and abort at step 7.
  const std::string error = test::error_of([&] { resumed.train(); });
  EXPECT_NE(error.find("train: 3 consecutive non-finite steps"), std::string::npos) << error;
  EXPECT_NE(error.find("at step 5"), std::string::npos) << error;
}

}  // namespace
}  // namespace bireco::train
