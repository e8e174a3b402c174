#include "bireco/train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <tuple>
#include <vector>

#include "bireco/model/hf_io.h"
#include "bireco/util/durable_file.h"
#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"
#include "bireco/util/log.h"
#include "bireco/util/manifest.h"

namespace bireco::train {
namespace fs = std::filesystem;
namespace {

constexpr const char* kStateDir = "trainer_state";

// step-<N> -> N, or -1.
int64_t step_of(const fs::path& dir) {
  const std::string name = dir.filename().string();
  if (name.rfind("step-", 0) != 0 || name.size() == 5) return -1;
  const std::string digits = name.substr(5);
  if (!std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
  return std::stoll(digits);
}

void remove_all_or_throw(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) throw Error("cannot remove " + dir.string() + ": " + ec.message());
}

// step-N.tmp, final.tmp, best.tmp (write_checkpoint), their save_pretrained temporaries
// (`.tmp-<pid>`) and a replaced folder's `.old-<pid>`: what a killed save leaves behind.
bool is_stale_temporary(const fs::path& dir) {
  const std::string name = dir.filename().string();
  if (name.rfind("step-", 0) != 0 && name.rfind("final", 0) != 0 && name.rfind("best", 0) != 0)
    return false;
  return name.find(".tmp") != std::string::npos || name.find(".old-") != std::string::npos;
}

void remove_stale_temporaries(const fs::path& checkpoint_dir) {
  if (!fs::is_directory(checkpoint_dir)) return;
  for (const auto& entry : fs::directory_iterator(checkpoint_dir)) {
    if (!entry.is_directory() || !is_stale_temporary(entry.path())) continue;
    log::info("removing ", entry.path().string(), " (left by a save that did not finish)");
    remove_all_or_throw(entry.path());
  }
}

// The step recorded in DIR's state.json, or -1 when it cannot be read.
int64_t recorded_step(const fs::path& dir) {
  try {
    std::ifstream in(dir / kStateDir / "state.json");
    return nlohmann::json::parse(in).at("step").get<int64_t>();
  } catch (const std::exception&) {
    return -1;
  }
}

}  // namespace

void write_checkpoint(const fs::path& dir, model::Transformer& model, const CheckpointContents& contents) {
  const fs::path temp = dir.parent_path() / (dir.filename().string() + ".tmp");
  remove_stale_temporaries(dir.parent_path());
  remove_all_or_throw(temp);
  try {
    model::SaveOptions options;
    options.copy_files_from = contents.tokenizer_dir;
    model::save_pretrained(model, temp, options);

    const fs::path state_dir = temp / kStateDir;
    fs::create_directories(state_dir);
    const nlohmann::json state = {{"version", kTrainerStateVersion},
                                  {"step", contents.state.step},
                                  {"sampler", contents.state.sampler},
                                  {"consecutive_skips", contents.state.consecutive_skips},
                                  {"config", contents.state.config},
                                  {"data_files", contents.state.data_files}};
    util::write_file_durably(state_dir / "state.json", state.dump(2) + "\n");
    model::write_safetensors(state_dir / "optimizer.safetensors", contents.optimizer);
    model::write_safetensors(state_dir / "rng.safetensors", contents.state.rng);
    if (contents.add_files) contents.add_files(temp);
    util::write_manifest(temp);  // last: its presence marks the folder complete
    util::install_directory(temp, dir);
  } catch (...) {
    util::remove_quietly(temp);  // the previous checkpoints stay as they were
    throw;
  }
}

TrainerState read_trainer_state(const fs::path& dir) {
  const fs::path file = dir / kStateDir / "state.json";
  std::ifstream in(file);
  if (!in) throw Error(file.string() + ": cannot read (not a bireco checkpoint?)");
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(file.string() + ": " + util::json_error_text(e));
  }
  if (!json.is_object() || json.value("version", nlohmann::json()) != kTrainerStateVersion)
    throw Error(file.string() + ": /version is not " + std::to_string(kTrainerStateVersion));
  TrainerState state;
  try {
    state.step = json.at("step").get<int64_t>();
    state.sampler = json.at("sampler").get<data::SamplerPosition>();
    state.config = json.value("config", nlohmann::json());
    state.consecutive_skips = json.value("consecutive_skips", int64_t{0});
    state.data_files = json.value("data_files", nlohmann::json());
  } catch (const nlohmann::json::exception& e) {
    throw Error(file.string() + ": " + util::json_error_text(e));
  }
  for (auto& [name, tensor] : model::read_safetensors(dir / kStateDir / "rng.safetensors"))
    state.rng.emplace_back(name, tensor);
  return state;
}

std::map<std::string, torch::Tensor> read_optimizer_state(const fs::path& dir) {
  return model::read_safetensors(dir / kStateDir / "optimizer.safetensors");
}

bool is_complete_checkpoint(const fs::path& dir) {
  try {
    return util::read_manifest(dir).count(std::string(kStateDir) + "/state.json") != 0;
  } catch (const Error&) {
    return false;
  }
}

std::string checkpoint_problem(const fs::path& dir) {
  if (!fs::is_directory(dir)) return dir.string() + ": not a folder";
  std::string problem = util::manifest_problem(dir, util::ManifestCheck::kChecksums);
  if (problem.empty() && !is_complete_checkpoint(dir))
    problem = (dir / util::kManifestFile).string() +
              ": lists no trainer_state/state.json (not a bireco checkpoint)";
  return problem;
}

void verify_checkpoint(const fs::path& dir) {
  const std::string problem = checkpoint_problem(dir);
  if (!problem.empty()) throw Error(problem);
}

fs::path latest_checkpoint(const fs::path& checkpoint_dir) {
  if (!fs::is_directory(checkpoint_dir)) return {};
  // (step, is final, folder), newest first.
  std::vector<std::tuple<int64_t, bool, fs::path>> candidates;
  for (const auto& entry : fs::directory_iterator(checkpoint_dir)) {
    const fs::path dir = entry.path();
    if (!entry.is_directory()) continue;
    if (is_stale_temporary(dir)) {
      log::warn("--resume auto: skipping ", dir.string(),
                ": incomplete (a save that did not finish)");
      continue;
    }
    const bool is_final = dir.filename() == "final";
    if (!is_final && step_of(dir) < 0) continue;
    if (!is_complete_checkpoint(dir)) {
      log::warn("--resume auto: skipping ", dir.string(), ": incomplete (no valid ",
                util::kManifestFile, ")");
      continue;
    }
    const int64_t step = recorded_step(dir);
    if (step < 0) {
      log::warn("--resume auto: skipping ", dir.string(), ": unreadable ", kStateDir,
                "/state.json");
      continue;
    }
    candidates.emplace_back(step, is_final, dir);
  }
  std::sort(candidates.rbegin(), candidates.rend());
  for (const auto& [step, is_final, dir] : candidates) {
    const std::string problem = checkpoint_problem(dir);
    if (problem.empty()) return dir;
    log::warn("--resume auto: skipping ", dir.string(), ": ", problem);
  }
  return {};
}

void prune_checkpoints(const fs::path& checkpoint_dir, int64_t keep) {
  if (keep <= 0 || !fs::is_directory(checkpoint_dir)) return;
  std::vector<std::pair<int64_t, fs::path>> steps;
  for (const auto& entry : fs::directory_iterator(checkpoint_dir)) {
    const int64_t step = step_of(entry.path());
    if (step >= 0 && is_complete_checkpoint(entry.path())) steps.emplace_back(step, entry.path());
  }
  std::sort(steps.rbegin(), steps.rend());
  for (size_t i = static_cast<size_t>(keep); i < steps.size(); ++i) {
    // Renamed out of the way first (atomically), then removed: a process killed during the
    // removal leaves a stale temporary that the next save removes, never a step-N folder that
    // still has its manifest but lost some of its files.
    const fs::path& dir = steps[i].second;
    const fs::path retired = dir.string() + ".old-" + std::to_string(::getpid());
    std::error_code ec;
    fs::rename(dir, retired, ec);
    if (ec)
      throw Error("cannot rename " + dir.string() + " to " + retired.string() + ": " +
                  ec.message());
    remove_all_or_throw(retired);
  }
}

}  // namespace bireco::train
