#include "bireco/config/pipeline.h"

#include <algorithm>
#include <iterator>

#include "bireco/config/load.h"
#include "bireco/util/durable_file.h"
#include "bireco/util/error.h"
#include "bireco/util/strings.h"

namespace bireco::config {
namespace fs = std::filesystem;
using nlohmann::json;

fs::path stage_output(const StageConfig& config, const std::string& sub) {
  return fs::path(config.checkpoint.dir) / (sub.empty() ? "final" : sub);
}

namespace {

// Splits "name:key=value" into ("name", "key=value") when the part before ':' names a
// stage; otherwise ("", whole).
std::pair<std::string, std::string> split_scoped(const std::string& assignment,
                                                 const std::vector<std::string>& names) {
  const auto colon = assignment.find(':');
  const auto eq = assignment.find('=');
  if (colon == std::string::npos || (eq != std::string::npos && eq < colon)) {
    return {"", assignment};
  }
  const std::string scope = assignment.substr(0, colon);
  if (std::find(names.begin(), names.end(), scope) == names.end()) {
    std::string message = "--set " + assignment + ": no stage named '" + scope + "' (stages: " +
                          util::join(names, ", ") + ")";
    throw Error(message);
  }
  return {scope, assignment.substr(colon + 1)};
}

// Resolves `@stage[/sub]` in model.path against the stages planned so far.
void resolve_reference(PlannedStage& stage, const std::vector<PlannedStage>& earlier,
                       const std::vector<std::string>& all_names) {
  std::string& path = stage.config.model.path;
  if (path.empty() || path[0] != '@') return;
  const auto slash = path.find('/');
  const std::string name = path.substr(1, slash == std::string::npos ? std::string::npos : slash - 1);
  const std::string sub = slash == std::string::npos ? "" : path.substr(slash + 1);
  const std::string where = stage.doc.where("model.path") + ": model.path";
  for (const auto& e : earlier) {
    if (e.name == name) {
      path = stage_output(e.config, sub).string();
      stage.model_from = name;
      return;
    }
  }
  if (std::find(all_names.begin(), all_names.end(), name) != all_names.end()) {
    throw Error(where + ": '@" + name + "' names a stage that runs after '" + stage.name + "'");
  }
  std::vector<std::string> earlier_names;
  for (const auto& e : earlier) earlier_names.push_back(e.name);
  std::string message = where + ": '@" + name + "' names no earlier stage";
  const auto s = util::closest_match(name, earlier_names);
  if (!s.empty()) message += "; did you mean '@" + s + "'?";
  throw Error(message);
}

// Each stage writes step-N/, final/ and metrics.jsonl into its checkpoint.dir: two stages with
// one folder would overwrite each other's checkpoints (and `@stage` would name the wrong one).
void check_distinct_outputs(const Plan& plan, const std::vector<std::string>& overrides) {
  if (!plan.is_pipeline) return;
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    for (size_t j = i + 1; j < plan.stages.size(); ++j) {
      const auto& a = plan.stages[i];
      const auto& b = plan.stages[j];
      if (util::comparable_path(a.config.checkpoint.dir) !=
          util::comparable_path(b.config.checkpoint.dir))
        continue;
      std::string message = b.doc.where("checkpoint.dir") + ": checkpoint.dir: stages '" + a.name +
                            "' and '" + b.name + "' both write under '" + b.config.checkpoint.dir +
                            "'; each stage needs its own folder";
      for (const auto& o : overrides) {
        if (o.rfind("checkpoint.dir=", 0) == 0) {
          message += " (`--set " + o + "` applies to every stage: scope it, e.g. --set " + b.name +
                     ":checkpoint.dir=...)";
          break;
        }
      }
      throw Error(message);
    }
  }
}

}  // namespace

Plan load_plan(const fs::path& file, const std::vector<std::string>& overrides) {
  Document top = load_document(file);
  Plan plan;
  if (!top.root.contains("pipeline")) {
    PlannedStage stage;
    stage.name = file.stem().string();
    stage.doc = std::move(top);
    for (const auto& o : overrides) apply_override(stage.doc, o);
    stage.config = read_stage(stage.doc);
    if (!stage.config.model.path.empty() && stage.config.model.path[0] == '@') {
      throw Error(stage.doc.where("model.path") + ": model.path: '" + stage.config.model.path +
                  "' refers to a pipeline stage, but " + file.string() +
                  " is a single-stage config");
    }
    plan.stages.push_back(std::move(stage));
    return plan;
  }

  plan.is_pipeline = true;
  for (const auto& [key, value] : top.root.items()) {
    if (key != "pipeline") {
      throw Error(top.where(key) + ": unknown key '" + key +
                  "' in a pipeline file (only 'pipeline' is allowed)");
    }
  }
  const json& entries = top.root["pipeline"];
  if (!entries.is_array() || entries.empty()) {
    throw Error(top.where("pipeline") + ": pipeline: expected a non-empty list of stages");
  }
  std::vector<std::string> names;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string at = "pipeline[" + std::to_string(i) + "]";
    const json& e = entries[i];
    if (!e.is_object()) throw Error(top.where(at) + ": " + at + ": expected a mapping");
    for (const auto& [key, value] : e.items()) {
      if (key != "name" && key != "config" && key != "set") {
        std::string message = top.where(at + "." + key) + ": unknown key '" + at + "." + key + "'";
        const auto s = util::closest_match(key, {"name", "config", "set"});
        if (!s.empty()) message += "; did you mean '" + at + "." + s + "'?";
        throw Error(message + " (a stage entry has name, config, set)");
      }
    }
    if (!e.contains("name") || !e["name"].is_string() || e["name"].get<std::string>().empty()) {
      throw Error(top.where(at) + ": " + at + ".name: required, a non-empty string");
    }
    const std::string name = e["name"];
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      throw Error(top.where(at + ".name") + ": " + at + ".name: stage '" + name +
                  "' appears twice");
    }
    names.push_back(name);
  }

  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string at = "pipeline[" + std::to_string(i) + "]";
    const json& e = entries[i];
    if (!e.contains("config") || !e["config"].is_string()) {
      throw Error(top.where(at) + ": " + at + ".config: required, the stage's config file");
    }
    fs::path stage_file = expand_env(e["config"].get<std::string>(), at + ".config");
    if (stage_file.is_relative()) stage_file = file.parent_path() / stage_file;
    if (!fs::exists(stage_file)) {
      throw Error(top.where(at + ".config") + ": " + at + ".config: file '" +
                  stage_file.string() + "' does not exist");
    }
    PlannedStage stage;
    stage.name = e["name"];
    stage.doc = load_document(stage_file);
    if (stage.doc.root.contains("pipeline")) {
      throw Error(top.where(at + ".config") + ": " + at + ".config: '" + stage_file.string() +
                  "' is itself a pipeline; nesting is not supported");
    }
    if (e.contains("set")) {
      const json& set = e["set"];
      if (!set.is_object()) {
        throw Error(top.where(at + ".set") + ": " + at + ".set: expected a mapping key.path -> value");
      }
      for (const auto& [key, value] : set.items()) set_path(stage.doc, key, value, at + ".set");
    }
    for (const auto& o : overrides) {
      const auto [scope, assignment] = split_scoped(o, names);
      if (scope.empty() || scope == stage.name) apply_override(stage.doc, assignment);
    }
    stage.config = read_stage(stage.doc);
    resolve_reference(stage, plan.stages, names);
    plan.stages.push_back(std::move(stage));
  }
  check_distinct_outputs(plan, overrides);
  return plan;
}

std::vector<std::string> resume_per_stage(const Plan& plan, const std::string& resume,
                                          std::string* note) {
  std::vector<std::string> out(plan.stages.size(), resume);
  if (resume.empty() || resume == "none" || resume == "auto") return out;
  std::vector<std::string> names;
  for (const auto& stage : plan.stages) names.push_back(stage.name);
  // STAGE:FOLDER names the stage; a plain FOLDER belongs to the stage whose checkpoint.dir holds
  // it.
  std::string folder = resume;
  size_t target = plan.stages.size();
  const auto colon = resume.find(':');
  if (colon != std::string::npos) {
    const auto it = std::find(names.begin(), names.end(), resume.substr(0, colon));
    if (it != names.end()) {
      target = static_cast<size_t>(it - names.begin());
      folder = resume.substr(colon + 1);
    }
  }
  std::string why = "named";
  if (target == plan.stages.size()) {
    if (plan.stages.size() == 1) {
      target = 0;
      why = "the only stage";
    } else {
      const fs::path wanted = util::comparable_path(folder);
      size_t longest = 0;
      std::vector<std::string> dirs;
      for (size_t i = 0; i < plan.stages.size(); ++i) {
        const fs::path dir = util::comparable_path(plan.stages[i].config.checkpoint.dir);
        dirs.push_back(names[i] + ": " + dir.string());
        const auto [end, _] = std::mismatch(dir.begin(), dir.end(), wanted.begin(), wanted.end());
        const size_t depth = static_cast<size_t>(std::distance(dir.begin(), dir.end()));
        if (end == dir.end() && depth > longest) {
          longest = depth;
          target = i;
        }
      }
      if (target == plan.stages.size())
        throw Error("--resume " + resume + ": the folder is under no stage's checkpoint.dir (" +
                    util::join(dirs, "; ") + "); name the stage: --resume STAGE:" + folder);
      why = "its checkpoint.dir holds the folder";
    }
  }
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = i < target ? "auto" : i == target ? folder : "none";
  if (note != nullptr) {
    *note = "--resume " + folder + " applies to stage '" + names[target] + "' (" + why + ")";
    if (target > 0)
      *note += "; the stages before it continue from their own newest checkpoint (--resume auto)";
    if (target + 1 < out.size()) *note += "; the stages after it start fresh";
  }
  return out;
}

}  // namespace bireco::config
