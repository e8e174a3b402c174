// `bireco export`: a checkpoint as merged HF model, PEFT adapter and sentence-transformers files.

#include "bireco/cli/command.h"
#include "bireco/train/export.h"
#include "bireco/util/log.h"

namespace bireco::cli {

Command add_export(CLI::App& app) {
  struct Options {
    std::string checkpoint, out;
  };
  auto o = std::make_shared<Options>();
  auto* sub = app.add_subcommand("export", "export a checkpoint as merged HF model, PEFT adapter and sentence-transformers files");
  sub->add_option("--checkpoint", o->checkpoint,
                  "a step-N or final folder, an HF model folder, or a PEFT adapter folder")->required();
  sub->add_option("--out", o->out,
                  "output folder: new, empty, or an earlier export (replaced); never one that "
                  "holds other files or the checkpoint")
      ->required();
  return {sub, [o]() -> int {
            train::export_checkpoint(o->checkpoint, o->out);
            log::info("exported ", o->checkpoint, " to ", o->out);
            return kExitOk;
          }};
}

}  // namespace bireco::cli
