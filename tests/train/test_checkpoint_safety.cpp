// Crash-safe checkpoints: a save verifies against its manifest; truncated, corrupted and
// incomplete folders are refused by name and skipped by `--resume auto`; a full disk (a
// file-size limit, and a real ENOSPC on a small tmpfs when allowed) leaves the previous
// checkpoint intact and no temporary folder behind.
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "bireco/model/hf_io.h"
#include "bireco/model/model_config.h"
#include "bireco/train/checkpoint.h"
#include "bireco/train/run_stage.h"
#include "bireco/util/manifest.h"
#include "test_support.h"
#include "tiny_run.h"
#include "util/file_size_limit.h"

namespace bireco::train {
namespace {
namespace fs = std::filesystem;

// A one-layer Llama small enough to save in milliseconds (model.safetensors ~ 40 KB).
model::Transformer tiny_model(double fill) {
  const auto config =
      model::parse_model_config(nlohmann::json{{"architectures", {"LlamaForCausalLM"}},
                                               {"model_type", "llama"},
                                               {"vocab_size", 64},
                                               {"hidden_size", 32},
                                               {"intermediate_size", 64},
                                               {"num_hidden_layers", 1},
                                               {"num_attention_heads", 2},
                                               {"num_key_value_heads", 1},
                                               {"max_position_embeddings", 64},
                                               {"rms_norm_eps", 1e-5},
                                               {"tie_word_embeddings", true},
                                               {"torch_dtype", "float32"}});
  model::Transformer m(config);
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.fill_(fill);
  return m;
}

CheckpointContents contents_at(int64_t step) {
  CheckpointContents c;
  c.state.step = step;
  c.state.config = {{"note", "test"}};
  c.optimizer = {{"exp_avg.embed_tokens.weight", torch::full({64, 32}, 0.5)},
                 {"exp_avg_sq.embed_tokens.weight", torch::full({64, 32}, 0.25)}};
  return c;
}

fs::path save(const fs::path& dir, int64_t step, double fill = 1.0) {
  auto m = tiny_model(fill);
  write_checkpoint(dir, m, contents_at(step));
  return dir;
}

// Every entry of `dir` apart from the named ones (a leftover *.tmp shows up here).
std::vector<std::string> others(const fs::path& dir, const std::vector<std::string>& expected) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (std::find(expected.begin(), expected.end(), name) == expected.end()) out.push_back(name);
  }
  return out;
}

// The value every weight of DIR's model.safetensors holds (they are all filled alike).
float weight_fill(const fs::path& dir) {
  auto m = tiny_model(0.0);
  model::load_hf_weights(m, dir);
  return m->norm->weight[0].item<float>();
}

TEST(CheckpointSafety, SavedCheckpointVerifiesAndItsManifestListsEveryFile) {
  test::TempDir tmp;
  const fs::path dir = save(tmp / "step-2", 2);
  EXPECT_EQ(checkpoint_problem(dir), "");
  EXPECT_TRUE(is_complete_checkpoint(dir));
  const auto manifest = util::read_manifest(dir);
  for (const char* file :
       {"config.json", "model.safetensors", "trainer_state/state.json",
        "trainer_state/optimizer.safetensors", "trainer_state/rng.safetensors"}) {
    ASSERT_TRUE(manifest.count(file)) << file;
    EXPECT_EQ(manifest.at(file).size, fs::file_size(dir / file)) << file;
  }
  EXPECT_EQ(others(tmp.path(), {"step-2"}), std::vector<std::string>{});
}

TEST(CheckpointSafety, TruncatedModelIsRefusedNamingTheFile) {
  test::TempDir tmp;
  const fs::path dir = save(tmp / "step-40", 40);
  const auto size = fs::file_size(dir / "model.safetensors");
  fs::resize_file(dir / "model.safetensors", size / 2);
  const std::string expected = (dir / "model.safetensors").string() + ": size " +
                               std::to_string(size / 2) + " != manifest " + std::to_string(size) +
                               " (truncated or corrupted checkpoint)";
  EXPECT_EQ(checkpoint_problem(dir), expected);
  EXPECT_EQ(test::error_of([&] { verify_checkpoint(dir); }), expected);
  // Loading the folder as a model (bireco embed/eval/export) checks it too.
  EXPECT_EQ(test::error_of([&] { weight_fill(dir); }), expected);
}

TEST(CheckpointSafety, FlippedOptimizerByteIsRefusedNamingTheFile) {
  test::TempDir tmp;
  const fs::path dir = save(tmp / "step-40", 40);
  const fs::path file = dir / "trainer_state/optimizer.safetensors";
  std::string bytes = test::read_file(file);
  bytes[bytes.size() - 7] ^= 0x10;  // inside the tensor data: the header still parses
  test::write_file(file, bytes);
  const std::string problem = checkpoint_problem(dir);
  EXPECT_EQ(problem.rfind(file.string() + ": xxh64 ", 0), 0u) << problem;
  EXPECT_NE(problem.find("(corrupted checkpoint)"), std::string::npos) << problem;
  EXPECT_EQ(weight_fill(dir), 1.0f);  // the model's own files are intact and still load
}

TEST(CheckpointSafety, InfoCliVerifiesACheckpointAndNamesTheCorruptedFile) {
  // `bireco info --model DIR` is how users (and scripts/chaos.sh) check a checkpoint.
  test::TempDir tmp;
  const fs::path dir = save(tmp / "step-40", 40);
  const std::string info = test::bireco_binary().string() + " info --model " + dir.string();
  const auto good = test::run_command(info);
  ASSERT_EQ(good.status, 0) << good.output;
  EXPECT_NE(good.output.find("sizes and xxh64 verified"), std::string::npos) << good.output;
  const fs::path file = dir / "trainer_state/optimizer.safetensors";
  std::string bytes = test::read_file(file);
  bytes[bytes.size() - 7] ^= 0x10;
  test::write_file(file, bytes);
  const auto bad = test::run_command(info);
  EXPECT_EQ(bad.status, 1) << bad.output;
  EXPECT_NE(bad.output.find(file.string() + ": xxh64 "), std::string::npos) << bad.output;
}

TEST(CheckpointSafety, DeletedManifestMakesTheCheckpointIncomplete) {
  test::TempDir tmp;
  const fs::path dir = save(tmp / "step-40", 40);
  fs::remove(dir / util::kManifestFile);
  EXPECT_FALSE(is_complete_checkpoint(dir));
  EXPECT_EQ(checkpoint_problem(dir),
            (dir / util::kManifestFile).string() +
                ": missing (incomplete checkpoint: its save did not finish)");
}

TEST(CheckpointSafety, ResumeAutoTakesTheNewestCheckpointThatVerifies) {
  test::TempDir tmp;
  const fs::path out = tmp / "out";
  save(out / "step-1", 1);
  save(out / "step-2", 2);
  save(out / "step-3", 3);
  save(out / "step-4", 4);
  fs::copy(out / "step-4", out / "step-5.tmp", fs::copy_options::recursive);  // a killed save
  fs::remove(out / "step-4" / util::kManifestFile);                           // incomplete
  fs::resize_file(out / "step-3/model.safetensors", 100);                     // truncated
  std::string opt = test::read_file(out / "step-2/trainer_state/optimizer.safetensors");
  opt[opt.size() - 1] ^= 0x01;  // bit rot
  test::write_file(out / "step-2/trainer_state/optimizer.safetensors", opt);
  EXPECT_EQ(latest_checkpoint(out), out / "step-1");
  save(out / "final", 1);
  EXPECT_EQ(latest_checkpoint(out), out / "final");  // final wins a tie
}

TEST(CheckpointSafety, StaleTemporariesOfAKilledRunAreRemovedByTheNextSave) {
  test::TempDir tmp;
  const fs::path out = tmp / "out";
  test::write_file(out / "step-5.tmp/model.safetensors", "half");
  test::write_file(out / "final.tmp.tmp-12345/config.json", "{");
  test::write_file(out / "metrics.jsonl", "{}\n");  // not a checkpoint: kept
  save(out / "step-6", 6);
  EXPECT_EQ(others(out, {"step-6", "metrics.jsonl"}), std::vector<std::string>{});
}

TEST(CheckpointSafety, FileSizeLimitDuringSaveKeepsThePreviousCheckpoint) {
  test::TempDir tmp;
  const fs::path out = tmp / "out";
  save(out / "final", 1, /*fill=*/1.0);
  std::string message;
  {
    test::FileSizeLimit limit(4096);  // config.json fits, model.safetensors (~40 KB) does not
    message = test::error_of([&] { save(out / "final", 2, /*fill=*/2.0); });
  }
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find(std::string(": write failed: ") + std::strerror(EFBIG)), std::string::npos)
      << message;
  EXPECT_EQ(checkpoint_problem(out / "final"), "");
  EXPECT_EQ(weight_fill(out / "final"), 1.0f);
  EXPECT_EQ(others(out, {"final"}), std::vector<std::string>{});
}

// End to end through run_stage: `--resume DIR` on a corrupted DIR stops with the file named;
// `--resume auto` passes over the corrupted newest ones and continues from the good one.
TEST(CheckpointSafety, RunStageRefusesCorruptedDirAndAutoResumesFromTheNewestGoodOne) {
  test::TempDir tmp;
  const fs::path out = tmp / "out";
  config::PlannedStage stage;
  stage.name = "tiny";
  auto& c = stage.config;
  c = test::tiny_run_config(out);
  c.train.max_steps = 2;
  c.checkpoint.every = 1;
  run_stage(stage, "none");
  for (const char* dir : {"step-1", "step-2", "final"})
    ASSERT_EQ(checkpoint_problem(out / dir), "") << dir;

  std::string weights = test::read_file(out / "final/model.safetensors");
  weights[weights.size() - 3] ^= 0x40;
  test::write_file(out / "final/model.safetensors", weights);
  fs::resize_file(out / "step-2/trainer_state/optimizer.safetensors", 64);
  const std::string message = test::error_of([&] { run_stage(stage, (out / "final").string()); });
  EXPECT_EQ(message.rfind("--resume " + (out / "final").string() + ": " +
                              (out / "final/model.safetensors").string() + ": xxh64 ",
                          0),
            0u)
      << message;

  run_stage(stage, "auto");  // from step-1: trains step 2 again and saves step-2 and final anew
  EXPECT_EQ(checkpoint_problem(out / "final"), "");
  EXPECT_EQ(checkpoint_problem(out / "step-2"), "");
  EXPECT_EQ(read_trainer_state(out / "final").step, 2);
}

// `bireco` under `ulimit -f` gets EFBIG (SIGXFSZ is ignored) and says which file, instead of
// dying from the signal; OUT is not left half-written.
TEST(CheckpointSafety, CliUnderFileSizeLimitReportsTheFileInsteadOfDying) {
  test::TempDir tmp;
  const auto r = test::run_command(
      "ulimit -f 64 && " + test::bireco_binary().string() + " export --checkpoint " +
      (test::data_dir() / "hf-parity/llama").string() + " --out " + (tmp / "out").string());
  EXPECT_EQ(r.status, 1) << r.output;  // not 128 + SIGXFSZ
  EXPECT_NE(r.output.find("model.safetensors"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(std::strerror(EFBIG)), std::string::npos) << r.output;
  EXPECT_EQ(others(tmp.path(), {}), std::vector<std::string>{});
}

// A real full disk: a tmpfs that holds one checkpoint and a half. Needs CAP_SYS_ADMIN (root
// in a mount namespace, as the test wrapper runs); skipped otherwise.
class SmallTmpfs : public ::testing::Test {
 protected:
  void TearDown() override {
    if (mounted_) ::umount2(mount_point_.c_str(), MNT_DETACH);
  }
  bool mount(const fs::path& dir, uint64_t bytes) {
    fs::create_directories(dir);
    const std::string options = "size=" + std::to_string(bytes);
    if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      error_ = std::strerror(errno);
      return false;
    }
    mount_point_ = dir;
    mounted_ = true;
    return true;
  }
  test::TempDir tmp_;
  fs::path mount_point_;
  bool mounted_ = false;
  std::string error_;
};

TEST_F(SmallTmpfs, NoSpaceLeftDuringSaveKeepsThePreviousCheckpoint) {
  if (::geteuid() != 0)
    GTEST_SKIP() << "needs root to mount a small tmpfs (the RLIMIT_FSIZE test covers EFBIG)";
  // One checkpoint's footprint in 4 KiB pages, measured on an ordinary folder.
  const fs::path probe = save(tmp_ / "probe/final", 1);
  uint64_t pages = 0;
  for (const auto& entry : fs::recursive_directory_iterator(probe))
    if (entry.is_regular_file()) pages += (entry.file_size() + 4095) / 4096;
  const fs::path out = tmp_ / "tmpfs";
  if (!mount(out, (pages + pages / 2 + 2) * 4096))
    GTEST_SKIP() << "cannot mount a tmpfs here (" << error_
                 << "); the RLIMIT_FSIZE test covers EFBIG";
  save(out / "final", 1, /*fill=*/1.0);
  const std::string message = test::error_of([&] { save(out / "final", 2, /*fill=*/2.0); });
  EXPECT_NE(message.find(std::strerror(ENOSPC)), std::string::npos) << message;
  EXPECT_NE(message.find(out.string()), std::string::npos) << message;  // names the file
  EXPECT_EQ(checkpoint_problem(out / "final"), "");
  EXPECT_EQ(weight_fill(out / "final"), 1.0f);
  EXPECT_EQ(others(out, {"final"}), std::vector<std::string>{});
}

}  // namespace
}  // namespace bireco::train
