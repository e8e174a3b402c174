#include "bireco/train/run_stage.h"

#include <filesystem>
#include <fstream>

#include "bireco/config/load.h"
#include "bireco/dist/environment.h"
#include "bireco/train/checkpoint.h"
#include "bireco/train/trainer.h"
#include "bireco/util/error.h"

namespace bireco::train {
namespace fs = std::filesystem;

void write_resolved_config(const config::PlannedStage& stage) {
  const fs::path dir = stage.config.checkpoint.dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("checkpoint.dir: cannot create '" + dir.string() + "': " + ec.message());
  const fs::path target = dir / "resolved_config.json";
  const fs::path temp = dir / "resolved_config.json.tmp";
  {
    std::ofstream out(temp);
    out << config::to_json(stage.config).dump(2) << "\n";
    if (!out) throw Error("cannot write " + temp.string());
  }
  fs::rename(temp, target, ec);
  if (ec) {
    throw Error("cannot rename " + temp.string() + " to " + target.string() + ": " + ec.message());
  }
}

bool run_stage(const config::PlannedStage& stage, const std::string& resume) {
  // Every rank resolves the same config; one writes it (several writers would race on the
  // temporary file).
  if (dist::read_environment().rank == 0) write_resolved_config(stage);
  Trainer trainer(stage.config);
  if (resume == "auto") {
    const fs::path latest = latest_checkpoint(stage.config.checkpoint.dir);
    if (!latest.empty()) trainer.resume_from(latest);  // none: a fresh start
  } else if (resume != "none" && !resume.empty()) {
    trainer.resume_from(resume);
  }
  return trainer.train();
}

}  // namespace bireco::train
