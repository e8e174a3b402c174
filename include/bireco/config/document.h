// A config file as a JSON tree plus where each key came from (file and line), read from
// JSON or YAML (chosen by extension). Both formats give the same tree.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>

namespace bireco::config {

struct Document {
  nlohmann::json root = nlohmann::json::object();
  std::filesystem::path file;       // empty for documents built in memory
  std::map<std::string, int> lines;  // "model.lora.r" / "data.train[0]" -> 1-based line
  std::map<std::string, std::string> origins;  // keys set outside the file: "--set", ...

  // "stage1.yaml:12" for a key path; "--set" for a key set from the command line; the file
  // name alone when the line is unknown (a default, or a key inside a set value).
  std::string where(const std::string& key_path) const;
};

// Reads .json, .yaml or .yml; a syntax error is a bireco::Error with file, line and column.
Document load_document(const std::filesystem::path& file);

// Parses text in the given format (for tests and in-memory configs).
Document parse_json_text(const std::string& text, const std::filesystem::path& name = {});
Document parse_yaml_text(const std::string& text, const std::filesystem::path& name = {});

// A `--set` value: YAML flow syntax, so `8` is an integer, `[0.9, 0.95]` a list, `null`
// null, `'8'` a string and anything unparsable the plain string itself.
nlohmann::json parse_override_value(const std::string& text);

// Sets `dotted.key.path` to `value`, creating objects on the way (a null on the way becomes
// an object, so `--set model.lora.r=8` works when model.lora is null). Marks the key as
// coming from `origin` (e.g. "--set").
void set_path(Document& doc, const std::string& dotted_path, nlohmann::json value,
              const std::string& origin = "--set");

// Applies a `--set a.b.c=value` argument; a missing '=' or empty path is a bireco::Error.
void apply_override(Document& doc, const std::string& assignment);

// Expands ${NAME} from the environment, and as the shell does ${NAME:-default} (the default
// when NAME is unset or empty) and ${NAME-default} (when unset); an unset variable without a
// default is a bireco::Error naming it and `context` (the key path). `$$` is a literal `$`.
std::string expand_env(const std::string& text, const std::string& context);

}  // namespace bireco::config
