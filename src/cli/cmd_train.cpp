// `bireco train --config stage.json|pipeline.yaml [--set k=v]... [--resume auto|DIR] [--resume-changed]`
#include <fstream>

#include "bireco/cli/command.h"
#include "bireco/config/load.h"
#include "bireco/config/pipeline.h"
#include "bireco/eval/training_evaluator.h"
#include "bireco/train/run_stage.h"
#include "bireco/train/stop_signal.h"
#include "bireco/util/error.h"
#include "bireco/util/log.h"

namespace bireco::cli {

Command add_train(CLI::App& app) {
  struct Options {
    std::string config;
    std::vector<std::string> overrides;
    std::string resume = "none";
    bool dry_run = false;
    bool resume_changed = false;
  };
  auto o = std::make_shared<Options>();
  auto* sub = app.add_subcommand("train", "train one stage, or every stage of a pipeline file");
  sub->add_option("--config,-c", o->config, "stage or pipeline config (.json, .yaml, .yml)")
      ->required();
  sub->add_option("--set", o->overrides,
                  "override a key: key.path=value, or stage:key.path=value in a pipeline "
                  "(repeatable)");
  sub->add_option(
         "--resume", o->resume,
         "`auto`: every stage continues from its newest complete checkpoint (fresh when none); "
         "`none`; or a checkpoint folder, for the one stage whose checkpoint.dir holds it "
         "(STAGE:FOLDER names the stage; earlier stages resume `auto`, later ones start fresh)")
      ->capture_default_str();
  sub->add_flag(
      "--resume-changed", o->resume_changed,
      "resume even when the config (seed, data, sampler, schedule, ...) or the data files differ "
      "from the checkpoint's run; each difference is logged as a warning (without it, an error)");
  sub->add_flag("--dry-run", o->dry_run,
                "validate the config and print the resolved stages without training");

  return {sub, [o] {
            train::install_stop_handlers();
            const config::Plan plan = config::load_plan(o->config, o->overrides);
            for (const auto& stage : plan.stages) {
              config::check_inputs_exist(stage.config, stage.doc, !stage.model_from.empty());
            }
            std::string note;
            const auto resume = config::resume_per_stage(plan, o->resume, &note);
            if (!note.empty()) log::info(note);
            for (size_t i = 0; i < plan.stages.size(); ++i) {
              const auto& stage = plan.stages[i];
              const auto resolved = config::to_json(stage.config);
              log::info("stage '", stage.name, "' resolved config:\n", resolved.dump(2));
              if (o->dry_run) continue;
              // Stopped by SIGTERM / SIGUSR1: step-<N>/ is saved; exit 0, later stages wait
              // for the resumed run.
              if (!train::run_stage(stage, resume[i], o->resume_changed, eval::make_training_evaluator)) break;
              if (train::stop_requested() != 0) {  // arrived during the final save: stop here too
                log::info("received ", train::signal_name(train::stop_requested()), ": stage '",
                          stage.name, "' is complete; later stages are not started");
                break;
              }
            }
            return kExitOk;
          }};
}

}  // namespace bireco::cli
