// Start-up checks of the opened datasets (see dataset_checks.h).
#include "bireco/data/dataset_checks.h"

#include "bireco/util/log.h"

namespace bireco::data {

std::vector<std::string> check_datasets(const std::vector<std::unique_ptr<Dataset>>& datasets,
                                        const config::DataConfig& data, int64_t global_batch) {
  std::vector<std::string> warnings;
  InstructionTable instructions;
  if (!data.instructions.empty() && data.format != "text")
    instructions = InstructionTable::from_config(data);
  for (const auto& d : datasets) {
    if (data.homogeneous_batches && data.drop_last && d->size() < global_batch) {
      warnings.push_back("data.train: dataset '" + d->name() + "' has " +
                         std::to_string(d->size()) + " records, fewer than one global batch of " +
                         std::to_string(global_batch) +
                         " (train.batch_size x world size): with data.homogeneous_batches and "
                         "data.drop_last it contributes no batch");
    }
    if (!instructions.table.empty() && instructions.table.count(d->name()) == 0 &&
        instructions.overrides.count(d->name()) == 0 && instructions.default_instruction.empty()) {
      warnings.push_back(
          "data.instructions: dataset '" + d->name() + "' has no entry in " + data.instructions +
          " nor in data.instruction_overrides, and data.default_instruction is empty: its "
          "queries get no instruction");
    }
  }
  for (const auto& w : warnings) log::warn(w);
  return warnings;
}

}  // namespace bireco::data
