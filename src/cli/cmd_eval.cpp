// `bireco eval`: evaluate retrieval, reranking or STS
#include <iostream>

#include "bireco/cli/command.h"
#include "bireco/eval/encoder.h"
#include "bireco/eval/run_file.h"
#include "bireco/eval/tasks.h"
#include "bireco/util/error.h"

namespace bireco::cli {

Command add_eval(CLI::App& app) {
  struct Options {
    std::string model, task, data, split = "test", out, run, instruction, cache, device = "auto", tag = "bireco";
    int64_t batch_tokens = 16384;
    bool keep_identical_ids = false;
  };
  auto o = std::make_shared<Options>();
  auto* sub = app.add_subcommand("eval", "evaluate retrieval, reranking or STS");
  sub->add_option("--model", o->model, "model directory")->required();
  sub->add_option("--task", o->task, "retrieval, reranking or sts")->required()
      ->check(CLI::IsMember({"retrieval", "reranking", "sts"}));
  sub->add_option("--data", o->data, "BEIR folder (retrieval), pairs .tsv/.jsonl (sts), lists .jsonl (reranking)")->required();
  sub->add_option("--split", o->split, "qrels split")->capture_default_str();
  sub->add_option("--out", o->out, "results.json (MTEB layout)");
  sub->add_option("--run", o->run, "TREC run file (retrieval; top 100 per query)");
  sub->add_option("--instruction", o->instruction, "task instruction for queries (empty: none)");
  sub->add_option("--cache", o->cache, "folder caching corpus embeddings across runs (retrieval)");
  sub->add_flag(
      "--keep-identical-ids", o->keep_identical_ids,
      "retrieval: rank documents whose id is the query's id too (BEIR and MTEB drop them)");
  sub->add_option("--batch-tokens", o->batch_tokens, "padded tokens per batch")->capture_default_str();
  sub->add_option("--device", o->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  sub->add_option("--tag", o->tag, "run tag (last column of the run file)")->capture_default_str();
  return {sub, [o]() -> int {
            if (o->batch_tokens <= 0) throw Error("--batch-tokens must be positive");
            if (!o->run.empty() && o->task != "retrieval") throw Error("--run is for --task retrieval only");
            auto settings = eval::EncoderSettings::from_model_dir(o->model);
            settings.batch_tokens = o->batch_tokens;
            auto encoder = eval::Encoder::load(o->model, o->device, settings);
            std::map<std::string, double> scores;
            nlohmann::json extra = {{"model", o->model}, {"data", o->data}};
            std::string main;
            if (o->task == "retrieval") {
              eval::RetrievalOptions options;
              options.split = o->split;
              options.instruction = o->instruction;
              options.cache_dir = o->cache;
              options.model_dir = o->model;
              options.ignore_identical_ids = !o->keep_identical_ids;
              const auto r = eval::run_retrieval(encoder, o->data, options);
              scores = {{"ndcg_at_10", r.scores.ndcg_at_10}, {"mrr_at_10", r.scores.mrr_at_10},
                        {"map_at_100", r.scores.map_at_100}, {"recall_at_100", r.scores.recall_at_100}};
              main = "ndcg_at_10";
              extra["split"] = o->split;
              extra["queries"] = r.scores.queries;
              extra["corpus"] = r.corpus_size;
              extra["corpus_from_cache"] = r.corpus_from_cache;
              extra["ignore_identical_ids"] = options.ignore_identical_ids;
              if (!o->run.empty()) eval::write_trec_run(o->run, r.run, o->tag, options.depth);
            } else if (o->task == "sts") {
              const auto r = eval::run_sts(encoder, o->data, o->instruction);
              scores = {{"cosine_spearman", r.spearman}, {"cosine_pearson", r.pearson}};
              main = "cosine_spearman";
              extra["pairs"] = r.pairs;
            } else {
              const auto r = eval::run_reranking(encoder, o->data, o->instruction);
              scores = {{"map", r.map}, {"mrr_at_10", r.mrr_at_10}};
              main = "map";
              extra["samples"] = r.samples;
            }
            for (const auto& [name, value] : scores) std::cout << name << " " << value << "\n";
            if (!o->out.empty()) eval::write_results_json(o->out, o->task, scores, main, extra);
            return kExitOk;
          }};
}

}  // namespace bireco::cli
