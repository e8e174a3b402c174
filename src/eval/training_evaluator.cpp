// Scoring the `eval` section's tasks on the training model (see training_evaluator.h).
#include "bireco/eval/training_evaluator.h"

#include <algorithm>

#include "bireco/train/export.h"
#include "bireco/util/error.h"
#include "bireco/util/strings.h"

namespace bireco::eval {
namespace fs = std::filesystem;

std::vector<TrainingTask> training_tasks(const config::StageConfig& config) {
  const auto& e = config.eval;
  std::vector<TrainingTask> tasks;
  std::vector<std::string> names;
  for (const auto& [kind, paths] :
       {std::pair{"retrieval", &e.retrieval}, std::pair{"reranking", &e.reranking},
        std::pair{"sts", &e.sts}}) {
    for (size_t i = 0; i < paths->size(); ++i) {
      const fs::path data = fs::path((*paths)[i]).lexically_normal();
      // "data/scifact-test/" normalises to a trailing empty name: take its folder's.
      const fs::path named = data.filename().empty() ? data.parent_path() : data;
      TrainingTask t{
          std::string(kind) == "retrieval" ? named.filename().string() : named.stem().string(),
          kind,
          data,
          {}};
      if (std::find(names.begin(), names.end(), t.name) != names.end())
        throw Error("eval." + std::string(kind) + "[" + std::to_string(i) +
                    "]: a task is already named '" + t.name +
                    "' (tasks are named by their folder or file name)");
      t.options.split = e.split;
      const auto own = e.instructions.find(t.name);
      t.options.instruction = own != e.instructions.end() ? own->second : e.instruction;
      t.options.max_queries = e.max_queries;
      t.options.max_corpus = e.max_corpus;
      names.push_back(t.name);
      tasks.push_back(std::move(t));
    }
  }
  for (const auto& [name, instruction] : e.instructions)
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw Error("eval.instructions." + name + ": no task is named '" + name +
                  "' (tasks: " + util::join(names, ", ") + ")");
  if (!e.metric_for_best.empty()) {
    std::vector<std::string> scores;
    for (const auto& t : tasks)
      for (const auto& metric : task_metrics(t.kind)) scores.push_back(t.name + "/" + metric);
    const std::string key = train::best_metric_key(e.metric_for_best).substr(5);  // without "eval/"
    if (std::find(scores.begin(), scores.end(), key) == scores.end())
      throw Error("eval.metric_for_best: '" + e.metric_for_best +
                  "' is not a score of the eval tasks (one of: " + util::join(scores, ", ") + ")");
  }
  return tasks;
}

TrainingEvaluator::TrainingEvaluator(const config::StageConfig& config)
    : tasks_(training_tasks(config)),
      settings_(
          EncoderSettings::from_json(train::embedding_settings_json(config), "the stage config")) {
  settings_.batch_tokens = config.eval.batch_tokens;
  settings_.show_progress = false;  // one log line per evaluation instead
  tokenizer_ =
      text::Tokenizer::load(config.text.tokenizer.empty() ? fs::path(config.model.path)
                                                          : fs::path(config.text.tokenizer));
}

std::map<std::string, double> TrainingEvaluator::evaluate(model::Transformer& model) {
  Encoder encoder(model, tokenizer_, settings_);  // eval mode; train::evaluate_untouched restores
  std::map<std::string, double> scores;
  for (const auto& t : tasks_) {
    const TaskScores r = run_task(encoder, t.kind, t.data, t.options);
    for (const auto& [metric, value] : r.scores) scores["eval/" + t.name + "/" + metric] = value;
  }
  return scores;
}

std::unique_ptr<train::Evaluator> make_training_evaluator(const config::StageConfig& config) {
  if (!config.eval.enabled()) return nullptr;
  return std::make_unique<TrainingEvaluator>(config);
}

}  // namespace bireco::eval
