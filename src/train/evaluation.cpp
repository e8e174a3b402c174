// Evaluation during training: the Trainer's side (schedule, isolation, ranks, best/).
#include "bireco/train/evaluation.h"

#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bireco/distributed/group.h"
#include "bireco/model/rng_state.h"
#include "bireco/train/checkpoint.h"
#include "bireco/train/trainer.h"
#include "bireco/util/durable_file.h"
#include "bireco/util/error.h"
#include "bireco/util/log.h"
#include "bireco/util/metrics.h"

namespace bireco::train {
namespace fs = std::filesystem;

std::map<std::string, double> evaluate_untouched(Evaluator& evaluator, model::Transformer& model) {
  const bool training = model->is_training();
  const auto rng = model::RngState::capture(model->embed->weight.device());
  std::map<std::string, double> scores;
  try {
    torch::NoGradGuard no_grad;
    model->eval();
    scores = evaluator.evaluate(model);
  } catch (...) {
    model->train(training);
    rng.restore();
    throw;
  }
  model->train(training);
  rng.restore();
  return scores;
}

std::string best_metric_key(const std::string& metric_for_best) {
  return metric_for_best.rfind("eval/", 0) == 0 ? metric_for_best : "eval/" + metric_for_best;
}

std::optional<BestRecord> read_best(const fs::path& best_dir) {
  if (!is_complete_checkpoint(best_dir)) return std::nullopt;
  const fs::path file = best_dir / kBestRecord;
  try {
    std::ifstream in(file);
    const auto j = nlohmann::json::parse(in);
    return BestRecord{j.at("step").get<int64_t>(), j.at("score").get<double>()};
  } catch (const std::exception& e) {
    throw Error(file.string() + ": not a best-checkpoint record (" + std::string(e.what()) + ")");
  }
}

void Trainer::set_evaluator(std::unique_ptr<Evaluator> evaluator) {
  evaluator_ = std::move(evaluator);
}

bool Trainer::evaluation_due(int64_t total) const {
  if (!evaluator_) return false;
  const int64_t every = config_.eval.every;
  return step_ == total || (every > 0 && step_ % every == 0);
}

void Trainer::restore_best() {
  best_score_.reset();
  if (!evaluator_ || config_.eval.metric_for_best.empty() || step_ == 0)
    return;  // a fresh run starts its own
  // Resumed: the best so far counts, unless it lies past the step resumed from (that part of
  // the run is done again, deterministically, and best/ with it).
  const auto best = read_best(fs::path(config_.checkpoint.dir) / "best");
  if (best && best->step <= step_) best_score_ = best->score;
}

void Trainer::evaluate(util::MetricsWriter& metrics) {
  const auto start = std::chrono::steady_clock::now();
  const bool main = distributed::is_main(group_.get());
  // Rank 0 evaluates; the others wait for its scores (or its error) through the store, with
  // eval.timeout_s rather than dist.timeout_s: a long evaluation is not a dead peer.
  nlohmann::json shared = nlohmann::json::object();
  if (main) {
    try {
      shared["scores"] = evaluate_untouched(*evaluator_, model_);
    } catch (const std::exception& e) {
      if (!group_) throw;
      shared["error"] = e.what();
    }
  }
  if (group_) {
    const auto timeout =
        std::chrono::milliseconds(static_cast<int64_t>(config_.eval.timeout_s * 1000));
    shared = nlohmann::json::parse(group_->share_from_main(shared.dump(), timeout));
  }
  if (shared.contains("error"))
    throw Error(main ? shared["error"].get<std::string>()
                     : "evaluation at step " + std::to_string(step_) +
                           " failed on rank 0: " + shared["error"].get<std::string>());
  const auto scores = shared.at("scores").get<std::map<std::string, double>>();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (main) {
    nlohmann::json line = {{"step", step_}, {"eval_seconds", seconds}};
    std::ostringstream shown;
    for (const auto& [name, value] : scores) {
      line[name] = value;
      shown << " " << name.substr(name.find('/') + 1) << " " << value;
    }
    metrics.write(line);
    log::info("step ", step_, " eval:", shown.str(), " (", seconds, " s)");
  }
  if (config_.eval.metric_for_best.empty()) return;
  const std::string key = best_metric_key(config_.eval.metric_for_best);
  const auto found = scores.find(key);
  if (found == scores.end())
    throw Error("eval.metric_for_best: '" + key + "' is not among the scores");
  // Strictly greater: among equal scores the earliest step stays; a non-finite score never wins.
  if (!std::isfinite(found->second) || (best_score_ && !(found->second > *best_score_))) return;
  best_score_ = found->second;
  const nlohmann::json record = {
      {"step", step_}, {"metric", key}, {"score", found->second}, {"scores", scores}};
  const fs::path dir = fs::path(config_.checkpoint.dir) / "best";
  save_checkpoint(dir, [&](const fs::path& temp) {
    util::write_file_durably(temp / kBestRecord, record.dump(2) + "\n");
  });  // moves no random stream: merged_copy puts back what apply_lora seeds
  if (main)
    log::info("best ", key, " so far: ", found->second, " at step ", step_, ": saved ",
              dir.string());
}

}  // namespace bireco::train
