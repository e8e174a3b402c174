// The evaluator of a stage config's `eval` section: every listed task scored on the training
// model by eval::run_task, the code `bireco eval` runs on a checkpoint, with the embedding
// settings the checkpoint records (bireco_embedding.json), so that the score logged at step N is
// the score of `bireco eval --model step-N/` (same caps, instruction and batch_tokens).
//
// Exactly equal in float32 on the CPU without LoRA. Otherwise up to rounding: with LoRA the
// checkpoint holds merged weights (W + s·BA) where training keeps them apart, and on CUDA
// `bireco eval` loads bf16 weights where bf16-mixed training keeps float32 ones.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bireco/config/stage_config.h"
#include "bireco/eval/encoder.h"
#include "bireco/eval/tasks.h"
#include "bireco/train/evaluation.h"

namespace bireco::eval {

struct TrainingTask {
  std::string name;  // a retrieval folder's name, else the file name without extension
  std::string kind;  // retrieval | reranking | sts
  std::filesystem::path data;
  TaskOptions options;
};

// The tasks of `config.eval`, checked: distinct names, eval.instructions naming tasks, and
// eval.metric_for_best naming one of their scores (errors name the key).
std::vector<TrainingTask> training_tasks(const config::StageConfig& config);

class TrainingEvaluator : public train::Evaluator {
 public:
  // Loads the tokenizer (text.tokenizer, else model.path).
  explicit TrainingEvaluator(const config::StageConfig& config);
  std::map<std::string, double> evaluate(model::Transformer& model) override;

 private:
  std::vector<TrainingTask> tasks_;
  std::shared_ptr<const text::Tokenizer> tokenizer_;
  EncoderSettings settings_;
};

// A train::EvaluatorFactory: null when the config lists no task.
std::unique_ptr<train::Evaluator> make_training_evaluator(const config::StageConfig& config);

}  // namespace bireco::eval
