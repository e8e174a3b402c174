// A run plan: one stage file, or a pipeline file listing several stages where a later stage
// may start from an earlier stage's output.
//
//   pipeline:
//     - name: stage1
//       config: stage1.yaml              # relative to the pipeline file
//       set: {train.max_steps: 2000}     # overrides for this stage
//     - name: stage2
//       config: stage2.yaml
//       set: {model.path: "@stage1/step-2000"}   # "@stage1" = stage1's final/
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "bireco/config/document.h"
#include "bireco/config/stage_config.h"

namespace bireco::config {

struct PlannedStage {
  std::string name;      // the file's stem for a single stage file
  Document doc;          // the stage's document after overrides (for error locations)
  StageConfig config;    // validated, `@stage` references resolved
  std::string model_from;  // the earlier stage whose output model.path names, or empty
};

struct Plan {
  bool is_pipeline = false;
  std::vector<PlannedStage> stages;
};

// Loads a stage or pipeline file. `overrides` are `--set` arguments: `key.path=value`
// applies to every stage, `name:key.path=value` to the named stage only. Stages must write to
// different folders: two with one checkpoint.dir (e.g. after an unscoped `--set
// checkpoint.dir=D`) are a bireco::Error naming both stages.
Plan load_plan(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});

// The `--resume` of each stage, in order. "none" and "auto" apply to every stage ("auto": each
// continues from its own newest checkpoint, a finished one does nothing). A checkpoint folder
// applies to one stage: `STAGE:FOLDER` names it, a plain FOLDER belongs to the stage whose
// checkpoint.dir holds it (the deepest; in a single-stage plan, that stage wherever FOLDER is);
// the stages before it get "auto", those after it "none". A FOLDER under no stage's
// checkpoint.dir is a bireco::Error listing them. `note` (when given) says which stage it was.
std::vector<std::string> resume_per_stage(const Plan& plan, const std::string& resume,
                                          std::string* note = nullptr);

// The folder a stage's `@name[/sub]` reference points to: <checkpoint.dir>/final or
// <checkpoint.dir>/<sub>.
std::filesystem::path stage_output(const StageConfig& config, const std::string& sub = "");

}  // namespace bireco::config
