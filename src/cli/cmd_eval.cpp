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
    std::string model, task, data, split = "test", out, run, instruction, cache, device = "auto", dtype = "auto",
        tag = "bireco";
    bool padded = false;
    int64_t batch_tokens = 16384, max_queries = 0, max_corpus = 0;
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
  sub->add_option("--dtype", o->dtype, "float32, bfloat16, float16, or auto: bfloat16 on CUDA and on CPUs with native bf16 (AMX / AVX512-BF16), else float32")
      ->capture_default_str();
  sub->add_flag("--padded", o->padded,
                "run padded batches as transformers / sentence-transformers do (default: padding-free, "
                "equal to fp32 rounding); for comparisons that hinge on exact ties");
  sub->add_option("--tag", o->tag, "run tag (last column of the run file)")->capture_default_str();
  sub->add_option(
         "--max-queries", o->max_queries,
         "score the first N queries (STS: pairs) only, as eval.max_queries in training; 0 = all")
      ->capture_default_str();
  sub->add_option("--max-corpus", o->max_corpus,
                  "retrieval: the judged documents plus the corpus's first others, up to N "
                  "(eval.max_corpus); 0 = all")
      ->capture_default_str();
  return {sub, [o]() -> int {
            if (o->batch_tokens <= 0) throw Error("--batch-tokens must be positive");
            if (o->max_queries < 0 || o->max_corpus < 0)
              throw Error("--max-queries and --max-corpus must be >= 0");
            if (!o->run.empty() && o->task != "retrieval") throw Error("--run is for --task retrieval only");
            auto settings = eval::EncoderSettings::from_model_dir(o->model);
            settings.batch_tokens = o->batch_tokens;
            settings.dtype = o->dtype;
            settings.padding_free = !o->padded;
            auto encoder = eval::Encoder::load(o->model, o->device, settings);
            eval::TaskOptions options;
            options.split = o->split;
            options.instruction = o->instruction;
            options.max_queries = o->max_queries;
            options.max_corpus = o->max_corpus;
            options.cache_dir = o->cache;
            options.model_dir = o->model;
            options.ignore_identical_ids = !o->keep_identical_ids;
            const auto r = eval::run_task(encoder, o->task, o->data, options);
            nlohmann::json extra = {{"model", o->model}, {"data", o->data}};
            if (o->task == "retrieval") {
              extra["split"] = o->split;
              extra["ignore_identical_ids"] = options.ignore_identical_ids;
            }
            extra.update(r.counts);
            if (!o->run.empty())
              eval::write_trec_run(o->run, r.run, o->tag, eval::RetrievalOptions().depth);
            for (const auto& [name, value] : r.scores) std::cout << name << " " << value << "\n";
            if (!o->out.empty()) eval::write_results_json(o->out, o->task, r.scores, r.main, extra);
            return kExitOk;
          }};
}

}  // namespace bireco::cli
