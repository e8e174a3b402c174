// Checkpoints: a Hugging Face model folder plus `trainer_state/` (everything a bit-exact resume
// needs), crash-safe: written to DIR.tmp, every file fsynced, manifest.json (sizes and XXH64
// of every file, util/manifest.h) written last, the folder fsynced and renamed to DIR, the
// parent fsynced. A folder is complete iff its manifest exists and parses; resuming verifies
// every file against it. A failed save (disk full) removes DIR.tmp, leaves every older
// checkpoint as it was, and throws an Error naming the file and the OS reason.
//
//   <checkpoint.dir>/step-<N>/   config.json, model.safetensors, tokenizer files
//                                trainer_state/state.json        version, step, sampler, config,
//                                                                data file fingerprints
//                                trainer_state/optimizer.safetensors   AdamW moments and steps
//                                trainer_state/rng.safetensors   every rank's generator states
//                                manifest.json                   written last
//   <checkpoint.dir>/final/      the same, at the end of training
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "bireco/data/sampler.h"
#include "bireco/model/safetensors.h"
#include "bireco/model/transformer.h"

namespace bireco::train {

constexpr int kTrainerStateVersion = 1;

struct TrainerState {
  int64_t step = 0;  // optimizer steps taken (the schedule's position too)
  data::SamplerPosition sampler;
  nlohmann::json config;  // the resolved stage config
  // Non-finite steps skipped in a row just before `step`, so that a resumed run aborts at the
  // same step as an uninterrupted one (train.max_skipped_steps). 0 in older checkpoints.
  int64_t consecutive_skips = 0;
  // The random generators' states (model::RngState::named): rank 0's CPU generator as
  // `cpu_generator` and its GPU's as `cuda_generator`; rank R > 0's as `rank<R>.cpu_generator`
  // and so on. Older checkpoints hold rank 0's CPU generator only.
  model::NamedTensors rng;
  // The data files' fingerprint (train/resume_check.h); null in checkpoints written before it.
  nlohmann::json data_files;
};

struct CheckpointContents {
  TrainerState state;  // state.rng is written to rng.safetensors
  model::NamedTensors optimizer;
  std::filesystem::path tokenizer_dir;  // tokenizer files copied from here; empty: none
  // Writes further files into the temporary folder before it is renamed (e.g. the LoRA
  // adapter and the sentence-transformers files, train/export.h); empty: none.
  std::function<void(const std::filesystem::path& temp)> add_files;
};

// Writes `dir` atomically (DIR.tmp, then rename; an older DIR is replaced only once the new
// one is complete). Stale `step-N.tmp` / `final.tmp` folders of a killed run beside it are
// removed first (logged).
void write_checkpoint(const std::filesystem::path& dir, model::Transformer& model,
                      const CheckpointContents& contents);

// Reads trainer_state/ (not the weights, nor restoring any generator: see TrainerState::rng).
TrainerState read_trainer_state(const std::filesystem::path& dir);
std::map<std::string, torch::Tensor> read_optimizer_state(const std::filesystem::path& dir);

// manifest.json exists and parses, and lists trainer_state/state.json (no file is read).
bool is_complete_checkpoint(const std::filesystem::path& dir);

// "" when `dir` is complete and every file matches its manifest (sizes and checksums); else
// one line naming the bad file. verify_checkpoint throws it as an Error. Cost: one read of
// the whole folder (page-cached right after a save) at XXH64 speed.
std::string checkpoint_problem(const std::filesystem::path& dir);
void verify_checkpoint(const std::filesystem::path& dir);

// The checkpoint under `checkpoint_dir` with the highest step (final/ wins a tie) that passes
// verify_checkpoint; incomplete (*.tmp, no manifest) and corrupted ones are skipped with a
// warning naming them and why. Empty when there is none.
std::filesystem::path latest_checkpoint(const std::filesystem::path& checkpoint_dir);

// Removes all but the newest `keep` step-<N> folders (keep <= 0: keeps all; final/ is never removed).
void prune_checkpoints(const std::filesystem::path& checkpoint_dir, int64_t keep);

}  // namespace bireco::train
