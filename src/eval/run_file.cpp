// TREC run files and MTEB-style results JSON.
#include "bireco/eval/run_file.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bireco/util/durable_file.h"
#include "bireco/util/error.h"

namespace bireco::eval {
namespace {

// FILE.tmp, fsynced, renamed (util/durable_file.h), its folder created first.
void write_atomically(const std::filesystem::path& file, const std::string& text) {
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
  util::write_file_atomically(file, text);
}

}  // namespace

void write_trec_run(const std::filesystem::path& file, const Run& run, const std::string& tag,
                    int64_t depth) {
  std::string text;
  char score[64];
  for (const auto& [qid, docs] : run) {
    std::vector<ScoredDoc> ranked = docs;
    trec_order(ranked);
    for (size_t i = 0; i < ranked.size() && static_cast<int64_t>(i) < depth; ++i) {
      std::snprintf(score, sizeof score, "%.9g", ranked[i].score);
      text += qid + " Q0 " + ranked[i].docid + " " + std::to_string(i + 1) + " " + score + " " + tag + "\n";
    }
  }
  write_atomically(file, text);
}

Run read_trec_run(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw Error(file.string() + ": cannot open");
  Run run;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    std::istringstream cells(line);
    std::string qid, q0, docid, rank, tag;
    double score = 0;
    if (!(cells >> qid >> q0 >> docid >> rank >> score >> tag))
      throw Error(file.string() + ":" + std::to_string(n) + ": expected `qid Q0 docid rank score tag`");
    run[qid].push_back({docid, score});
  }
  return run;
}

void write_results_json(const std::filesystem::path& file, const std::string& task,
                        const std::map<std::string, double>& scores, const std::string& main,
                        const nlohmann::json& extra) {
  nlohmann::ordered_json j;
  j["task"] = task;
  nlohmann::ordered_json s;
  for (const auto& [name, value] : scores) s[name] = value;
  s["main_score"] = scores.at(main);
  j["scores"] = s;
  for (const auto& [key, value] : extra.items()) j[key] = value;
  write_atomically(file, j.dump(2) + "\n");
}

}  // namespace bireco::eval
