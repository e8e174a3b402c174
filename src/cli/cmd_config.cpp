// `bireco config --config FILE [--set k=v]...` prints the resolved stages;
// `bireco config --schema` prints the Markdown reference of every key (configs/README.md).
#include <iostream>

#include "bireco/cli/command.h"
#include "bireco/config/load.h"
#include "bireco/config/pipeline.h"
#include "bireco/util/error.h"

namespace bireco::cli {

Command add_config(CLI::App& app) {
  struct Options {
    std::string config;
    std::vector<std::string> overrides;
    bool schema = false;
  };
  auto o = std::make_shared<Options>();
  auto* sub = app.add_subcommand("config", "print a resolved config, or the config reference");
  auto* file = sub->add_option("--config,-c", o->config, "stage or pipeline config");
  auto* set =
      sub->add_option("--set", o->overrides,
                      "override a key: key.path=value, or stage:key.path=value in a pipeline "
                      "(repeatable)");
  auto* schema = sub->add_flag("--schema", o->schema, "print every key, its default and meaning");
  file->excludes(schema);
  set->excludes(schema);
  return {sub, [o] {
            if (o->schema) {
              std::cout << config::schema_markdown();
              return kExitOk;
            }
            if (o->config.empty())
              throw Error("bireco config: give --config FILE (with any --set) or --schema");
            const config::Plan plan = config::load_plan(o->config, o->overrides);
            nlohmann::json out = nlohmann::json::object();
            for (const auto& stage : plan.stages) out[stage.name] = config::to_json(stage.config);
            std::cout << (plan.is_pipeline ? out : out.begin().value()).dump(2) << "\n";
            return kExitOk;
          }};
}

}  // namespace bireco::cli
