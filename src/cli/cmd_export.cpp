// `bireco export`: a checkpoint as merged HF model, PEFT adapter and sentence-transformers files.

#include "bireco/cli/command.h"
#include "bireco/config/load.h"
#include "bireco/train/export.h"
#include "bireco/util/error.h"
#include "bireco/util/log.h"

namespace bireco::cli {

Command add_export(CLI::App& app) {
  struct Options {
    std::string checkpoint, out, config;
    std::vector<std::string> overrides;
  };
  auto o = std::make_shared<Options>();
  auto* sub = app.add_subcommand("export", "export a checkpoint as merged HF model, PEFT adapter and sentence-transformers files");
  sub->add_option("--checkpoint", o->checkpoint,
                  "a step-N or final folder, an HF model folder, or a PEFT adapter folder")->required();
  sub->add_option("--out", o->out,
                  "output folder: new, empty, or an earlier export (replaced); never one that "
                  "holds other files or the checkpoint")
      ->required();
  sub->add_option(
      "--config,-c", o->config,
      "a stage config whose text, pooling and instruction settings the export records instead of "
      "the checkpoint's (e.g. a base model as the untrained baseline of that run)");
  sub->add_option("--set", o->overrides,
                  "override a key of --config: --set text.max_length=256 (repeatable)");
  return {sub, [o]() -> int {
            if (!o->overrides.empty() && o->config.empty()) throw Error("--set needs --config");
            if (!o->config.empty()) {
              const config::StageConfig embedding = config::load_stage(o->config, o->overrides);
              train::export_checkpoint(o->checkpoint, o->out, &embedding);
              log::info("exported ", o->checkpoint, " to ", o->out,
                        " with the embedding settings of ", o->config);
              return kExitOk;
            }
            train::export_checkpoint(o->checkpoint, o->out);
            log::info("exported ", o->checkpoint, " to ", o->out);
            return kExitOk;
          }};
}

}  // namespace bireco::cli
