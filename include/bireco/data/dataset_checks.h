// Problems with the opened datasets that would otherwise surface hours into a run, or never:
// checked once at start-up, each warning naming the dataset and the key to change.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bireco/config/stage_config.h"
#include "bireco/data/sources.h"

namespace bireco::data {

// Warnings (each also logged with log::warn), in dataset order:
//   - with data.homogeneous_batches and data.drop_last, a dataset smaller than one global
//     batch (batch_size x world size) contributes no batch at all;
//   - with a data.instructions table, a dataset that has no entry there nor in
//     data.instruction_overrides, and no data.default_instruction, gets no instruction.
// (Too few hard negatives is an error while indexing: SourceOptions::min_negatives.)
std::vector<std::string> check_datasets(const std::vector<std::unique_ptr<Dataset>>& datasets,
                                        const config::DataConfig& data, int64_t global_batch);

}  // namespace bireco::data
