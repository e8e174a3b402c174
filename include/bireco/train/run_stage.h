// Runs one planned stage end to end: the entry point `bireco train` calls for each stage.
#pragma once

#include <string>

#include "bireco/config/pipeline.h"
#include "bireco/train/evaluation.h"

namespace bireco::train {

// Writes <checkpoint.dir>/resolved_config.json, then trains with the stage's objective.
// `resume`: "none", "auto" or a checkpoint folder (config::resume_per_stage says which stage of
// a pipeline gets which); `resume_changed`: accept a checkpoint of a changed run
// (Trainer::resume_from). `evaluator` makes what scores the `eval` section's tasks
// (eval::make_training_evaluator; the train module does not know eval's tasks). Returns false
// when a stop signal ended the stage early (Trainer::train): later stages must not start.
bool run_stage(const config::PlannedStage& stage, const std::string& resume, bool resume_changed = false,
               const EvaluatorFactory& evaluator = {});

// Writes the resolved config next to the outputs (atomically: temp file, then rename).
void write_resolved_config(const config::PlannedStage& stage);

}  // namespace bireco::train
