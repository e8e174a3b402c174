// Strict resume: a checkpoint continues only the run that wrote it. The trainer state records
// the resolved config (seed, sampler settings, schedule, optimizer, ...) and a fingerprint of
// every data file; resuming compares both with the run at hand and names each difference.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bireco/config/stage_config.h"

namespace bireco::train {

// The files data.train reads (globs expanded in order; a folder stands for the regular files
// under it; bireco's `*.idx.bin` caches left out) as a JSON list of
// {"path", "size", "xxh64"}. `xxh64` hashes the size and up to 64 blocks of 4 KiB spread evenly
// over the file (the whole file when it is smaller): it catches a replaced or re-generated file
// of the same size at a cost of at most 256 KiB read per file, not every edit inside one.
nlohmann::json data_fingerprint(const config::DataConfig& data);

// One line per difference between the run a checkpoint recorded (`saved_config`: its
// resolved stage config; `saved_data`: its data_fingerprint) and this one, e.g.
//   train.seed: 3 at the checkpoint, 4 now
//   data file 2 (nq.jsonl): size 1200 at the checkpoint, 1310 now
// Keys that do not change what is computed (checkpoint.*, dist.*, logging, model.device,
// gradient checkpointing, loss chunking) are not compared; data.train is compared through the
// files it names, so moving identical data elsewhere is no difference. `notes` gets what could
// not be checked (a checkpoint written before data fingerprints or a key existed).
std::vector<std::string> run_differences(const nlohmann::json& saved_config,
                                         const nlohmann::json& saved_data,
                                         const nlohmann::json& config_now,
                                         const nlohmann::json& data_now,
                                         std::vector<std::string>* notes = nullptr);

}  // namespace bireco::train
