#include "bireco/train/run_stage.h"

#include <filesystem>

#include "bireco/config/load.h"
#include "bireco/distributed/environment.h"
#include "bireco/train/checkpoint.h"
#include "bireco/train/trainer.h"
#include "bireco/util/durable_file.h"
#include "bireco/util/error.h"
#include "bireco/util/log.h"

namespace bireco::train {
namespace fs = std::filesystem;

void write_resolved_config(const config::PlannedStage& stage) {
  const fs::path dir = stage.config.checkpoint.dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("checkpoint.dir: cannot create '" + dir.string() + "': " + ec.message());
  util::write_file_atomically(dir / "resolved_config.json",
                              config::to_json(stage.config).dump(2) + "\n");
}

bool run_stage(const config::PlannedStage& stage, const std::string& resume, bool resume_changed,
               const EvaluatorFactory& evaluator) {
  // Every rank resolves the same config; one writes it (several writers would race on the
  // temporary file).
  if (distributed::read_environment().rank == 0) {
    write_resolved_config(stage);
    log::info("stage '", stage.name, "' writes under ",
              fs::absolute(stage.config.checkpoint.dir).lexically_normal().string());
  }
  // The checkpoint is verified against its manifest before anything is built (a bad one stops
  // the run at once). Cost: the folder is read once more than loading it needs (page-cached).
  fs::path from;
  if (resume == "auto") {
    // The newest checkpoint that verifies; incomplete and corrupted ones are skipped (warned).
    from = latest_checkpoint(stage.config.checkpoint.dir);
    if (from.empty())
      log::info("--resume auto: no complete checkpoint in ", stage.config.checkpoint.dir,
                ": starting at step 0");
  } else if (resume != "none" && !resume.empty()) {
    const std::string problem = checkpoint_problem(resume);
    if (!problem.empty()) throw Error("--resume " + resume + ": " + problem);
    from = resume;
  }
  // Before the model is built, so that a bad eval section stops the run at once.
  std::unique_ptr<Evaluator> scorer = evaluator ? evaluator(stage.config) : nullptr;
  Trainer trainer(stage.config);
  trainer.set_evaluator(std::move(scorer));
  if (!from.empty()) trainer.resume_from(from, resume_changed);
  return trainer.train();
}

}  // namespace bireco::train
