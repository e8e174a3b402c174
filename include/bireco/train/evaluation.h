// Evaluation during training (the stage config's `eval` section): when it runs, how one
// evaluation leaves training untouched, how the ranks share it, and best/. What is scored lives
// in eval/training_evaluator.h: DESIGN.md puts eval below train, so the trainer sees only the
// interface below.
//
//   <checkpoint.dir>/best/   a checkpoint like step-N/ (atomic, verified by its manifest), of
//                            the evaluation scoring highest on eval.metric_for_best, plus
//                            eval.json {"step", "metric", "score", "scores"}; never pruned
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "bireco/config/stage_config.h"
#include "bireco/model/transformer.h"

namespace bireco::train {

class Evaluator {
 public:
  virtual ~Evaluator() = default;
  // Scores of `model` (in eval mode, under no_grad), named as metrics.jsonl logs them:
  // "eval/<task>/<metric>".
  virtual std::map<std::string, double> evaluate(model::Transformer& model) = 0;
};

// Makes the evaluator of a stage; returns null when its config lists no task.
using EvaluatorFactory = std::function<std::unique_ptr<Evaluator>(const config::StageConfig&)>;

// Runs `evaluator` and leaves training as it found it: the model back in the mode it had, and
// torch's CPU generator and the model's GPU generator (model::RngState) at their states before,
// whatever the evaluation drew; autograd is off meanwhile. So a run with evaluation trains
// bit-identically to one without.
std::map<std::string, double> evaluate_untouched(Evaluator& evaluator, model::Transformer& model);

// The key of eval.metric_for_best among the scores: "eval/" + the metric unless it has it.
std::string best_metric_key(const std::string& metric_for_best);

constexpr const char* kBestRecord = "eval.json";  // in best/

// The step and score recorded in `best_dir`/eval.json when best_dir is a complete checkpoint.
struct BestRecord {
  int64_t step = 0;
  double score = 0;
};
std::optional<BestRecord> read_best(const std::filesystem::path& best_dir);

}  // namespace bireco::train
