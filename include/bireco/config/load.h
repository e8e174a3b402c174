// From a config file (or Document) to a validated StageConfig, and back to JSON / docs.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "bireco/config/document.h"
#include "bireco/config/stage_config.h"

namespace bireco::config {

// Reads every key into the typed config. Errors (bireco::Error, one line, prefixed with
// file:line) for: an unknown key (with the closest valid key), a wrong type (expected and
// found), a value outside a key's choices, an unset ${ENV} in a path, an out-of-range value.
StageConfig read_stage(const Document& doc);

// Loads a stage file, applies `--set` overrides in order, reads and validates it.
StageConfig load_stage(const std::filesystem::path& file,
                       const std::vector<std::string>& overrides = {});

// Checks that the files a stage reads exist: model.path/config.json, data.train globs,
// data.instructions, text.tokenizer. `skip_model_path` for a path produced by an earlier
// pipeline stage. Errors name the key and the path.
void check_inputs_exist(const StageConfig& config, const Document& doc,
                        bool skip_model_path = false);

// Every resolved value, defaults included (printed at start, written next to the outputs).
nlohmann::json to_json(const StageConfig& config);

// Every key path of the schema ("model.lora.r", ...), in schema order.
std::vector<std::string> schema_paths();

// The Markdown table of every key, its type, default and meaning (configs/README.md).
std::string schema_markdown();

// Expands a data.train entry, the one expansion the start-up check and the loader share:
// a glob (`*`, `?`, `[...]` anywhere in the path, as glob(3)) to its sorted matches, a plain
// path to itself when it exists; empty when nothing matches. bireco's line-index caches
// (`<file>.idx.bin`) are never data: a glob skips them, naming one is an error.
std::vector<std::filesystem::path> expand_glob(const std::string& pattern);
// Whether `file` is a line-index cache (data::LineIndex::cache_path) or its temporary.
bool is_index_cache(const std::filesystem::path& file);

}  // namespace bireco::config
