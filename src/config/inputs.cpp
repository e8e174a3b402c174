// Checks that the files a stage will read exist, before any expensive work starts.
#include <glob.h>

#include "bireco/config/load.h"
#include "bireco/util/error.h"
#include "bireco/util/strings.h"

namespace bireco::config {
namespace fs = std::filesystem;

bool is_index_cache(const fs::path& file) {
  const std::string name = file.filename().string();
  // data::LineIndex::cache_path, and the temporary it is written under
  return util::ends_with(name, ".idx.bin") || name.find(".idx.bin.tmp") != std::string::npos;
}

std::vector<fs::path> expand_glob(const std::string& pattern) {
  if (pattern.find_first_of("*?[") == std::string::npos) {
    if (is_index_cache(pattern)) {
      throw Error("'" + pattern +
                  "' is a line-index cache bireco wrote beside a data file, not data");
    }
    if (fs::exists(pattern)) return {pattern};
    return {};
  }
  // glob(3) as the shell: wildcards in any part of the path, sorted matches, hidden files only
  // when the pattern says so.
  glob_t g{};
  std::vector<fs::path> out;
  if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) {
      if (!is_index_cache(g.gl_pathv[i])) out.emplace_back(g.gl_pathv[i]);
    }
  }
  ::globfree(&g);
  return out;
}

void check_inputs_exist(const StageConfig& c, const Document& doc, bool skip_model_path) {
  auto fail = [&](const std::string& key, const std::string& what) {
    throw Error(doc.where(key) + ": " + key + ": " + what);
  };
  if (!skip_model_path) {
    if (!fs::is_directory(c.model.path)) {
      fail("model.path", "model directory '" + c.model.path + "' does not exist");
    }
    if (!fs::exists(fs::path(c.model.path) / "config.json")) {
      fail("model.path", "'" + c.model.path + "' has no config.json (not a Hugging Face model "
           "directory)");
    }
  }
  for (size_t i = 0; i < c.data.train.size(); ++i) {
    const std::string key = "data.train[" + std::to_string(i) + "]";
    std::vector<fs::path> paths;
    try {
      paths = expand_glob(c.data.train[i]);
    } catch (const Error& e) {
      fail(key, e.what());
    }
    if (paths.empty()) fail(key, "no file matches '" + c.data.train[i] + "'");
  }
  if (!c.data.instructions.empty() && !fs::exists(c.data.instructions)) {
    fail("data.instructions", "file '" + c.data.instructions + "' does not exist");
  }
  for (const auto& [key, paths] :
       {std::pair{"eval.retrieval", &c.eval.retrieval},
        std::pair{"eval.reranking", &c.eval.reranking}, std::pair{"eval.sts", &c.eval.sts}}) {
    for (size_t i = 0; i < paths->size(); ++i)
      if (!fs::exists((*paths)[i]))
        fail(std::string(key) + "[" + std::to_string(i) + "]",
             "'" + (*paths)[i] + "' does not exist");
  }
  if (!c.text.tokenizer.empty() && !fs::exists(c.text.tokenizer)) {
    fail("text.tokenizer", "'" + c.text.tokenizer + "' does not exist");
  }
}

}  // namespace bireco::config
