// Evaluation during training (the `eval` section), end to end through `bireco train` on the demo's
// tiny Llama: the score logged at step N is `bireco eval` on step-N/ (EvalAtStepNEqualsBirecoEval),
// best/ holds the highest-scoring step, TensorBoard's own reader finds metrics.jsonl's numbers,
// evaluation changes nothing of training (bit-identical outputs with and without it), and on 2
// Gloo ranks rank 0 evaluates while the other waits.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bireco/model/load.h"
#include "bireco/train/checkpoint.h"
#include "bireco/train/evaluation.h"
#include "distributed/dist_test_support.h"
#include "test_support.h"

namespace bireco::train {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

const std::string kInstruction =
    "Given a scientific claim, retrieve documents that support or refute the claim";

// A stage config under `dir`: 4 steps of the tiny model, checkpoints every 2 kept, `eval` and
// `model_extra` spliced in.
fs::path stage_config(const fs::path& dir, const std::string& name, const std::string& eval,
                      const std::string& stage, int batch_size = 4,
                      const std::string& model_extra = "") {
  const fs::path root = test::source_dir();
  const fs::path file = dir / (name + ".json");
  test::write_file(file, R"({"stage": ")" + stage + R"(",
    "model": {"path": ")" + (root / "configs/demo/tiny-llama").string() +
                             R"(", "init": "random", "device": "cpu")" + model_extra + R"(},
    "text": {"max_length": 32, "template": "{text}", "add_eos": true},
    "data": {"train": [")" + (root / "data/demo/train/scifact.jsonl").string() +
                             R"("], "default_instruction": "Retrieve"},
    "optim": {"lr": 1e-3, "weight_decay": 0.01},
    "train": {"batch_size": )" +
                             std::to_string(batch_size) +
                             R"(, "grad_accum": 1, "max_steps": 4, "seed": 5, "precision": "fp32"},
    "checkpoint": {"dir": ")" +
                             (dir / name).string() + R"(", "every": 2, "keep": 0},
    "dist": {"timeout_s": 60})" +
                             (eval.empty() ? "" : ",\n    \"eval\": " + eval) + "}");
  return file;
}

// Retrieval on the demo's SciFact test folder (capped) and STS on a few pairs.
std::string eval_section(const fs::path& dir, int every = 2) {
  test::write_file(
      dir / "pairs.jsonl",
      "{\"sentence1\": \"coffee and sleep\", \"sentence2\": \"sleep after coffee\", \"score\": 4}\n"
      "{\"sentence1\": \"gene expression\", \"sentence2\": \"protein folding\", \"score\": 1.5}\n"
      "{\"sentence1\": \"vaccines\", \"sentence2\": \"immune response to vaccines\", \"score\": "
      "3.5}\n"
      "{\"sentence1\": \"a cat\", \"sentence2\": \"stock markets\", \"score\": 0}\n");
  return R"({"every": )" + std::to_string(every) + R"(, "retrieval": [")" +
         (test::source_dir() / "data/demo/scifact-test").string() + R"("], "sts": [")" +
         (dir / "pairs.jsonl").string() + R"("], "instruction": ")" + kInstruction +
         R"(", "instructions": {"pairs": ""}, "max_queries": 20, "max_corpus": 120, "metric_for_best": "scifact-test/ndcg_at_10"})";
}

std::vector<json> read_lines(const fs::path& file) {
  std::vector<json> lines;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(json::parse(line));
  return lines;
}

// metrics.jsonl's evaluation lines by step.
std::map<int64_t, json> eval_lines(const fs::path& run_dir) {
  std::map<int64_t, json> out;
  for (const auto& line : read_lines(run_dir / "metrics.jsonl"))
    if (line.contains("eval/scifact-test/ndcg_at_10")) {
      EXPECT_EQ(out.count(line["step"].get<int64_t>()), 0u)
          << "step " << line["step"] << " evaluated twice";
      out[line["step"].get<int64_t>()] = line;
    }
  return out;
}

test::CommandResult train(const fs::path& config) {
  return test::run_command(test::bireco_binary().string() + " train --config " + config.string());
}

TEST(Evaluation, ScoreAtStepNEqualsBirecoEvalOnStepNAndBestKeepsTheHighest) {
  test::TempDir tmp;
  const auto run = train(stage_config(tmp.path(), "run", eval_section(tmp.path()), "contrastive"));
  ASSERT_EQ(run.status, 0) << run.output;
  // The log shows the scores as they come (pairs/... sorts first).
  const size_t logged = run.output.find("step 2 eval: pairs/cosine_pearson ");
  ASSERT_NE(logged, std::string::npos) << run.output;
  EXPECT_NE(run.output.find("scifact-test/ndcg_at_10 ", logged), std::string::npos) << run.output;
  auto evals = eval_lines(tmp / "run");
  ASSERT_EQ(evals.size(), 2u);  // every 2 steps of 4; the end is step 4 (evaluated once)
  for (const int64_t step : {2, 4}) {
    const fs::path checkpoint = tmp / "run" / ("step-" + std::to_string(step));
    const std::string common = test::bireco_binary().string() + " eval --device cpu --model " +
                               checkpoint.string() + " --max-queries 20 --max-corpus 120 --out ";
    const auto retrieval =
        test::run_command(common + (tmp / "r.json").string() + " --task retrieval --data " +
                          (test::source_dir() / "data/demo/scifact-test").string() +
                          " --instruction '" + kInstruction + "'");
    ASSERT_EQ(retrieval.status, 0) << retrieval.output;
    const json r = json::parse(test::read_file(tmp / "r.json"));
    EXPECT_EQ(r["queries"], 20);
    EXPECT_EQ(r["corpus"], 120);
    for (const char* metric : {"ndcg_at_10", "mrr_at_10", "map_at_100", "recall_at_100"})
      EXPECT_EQ(evals[step][std::string("eval/scifact-test/") + metric].get<double>(),
                r["scores"][metric].get<double>())
          << metric << " at step " << step;
    const auto sts = test::run_command(common + (tmp / "s.json").string() + " --task sts --data " +
                                       (tmp / "pairs.jsonl").string());
    ASSERT_EQ(sts.status, 0) << sts.output;
    const json s = json::parse(test::read_file(tmp / "s.json"));
    EXPECT_EQ(evals[step]["eval/pairs/cosine_spearman"].get<double>(),
              s["scores"]["cosine_spearman"].get<double>());
    EXPECT_EQ(evals[step]["eval/pairs/cosine_pearson"].get<double>(),
              s["scores"]["cosine_pearson"].get<double>());
  }
  // best/: a complete checkpoint of the step that scored highest (the earliest of equals).
  verify_checkpoint(tmp / "run" / "best");
  const json best = json::parse(test::read_file(tmp / "run" / "best" / kBestRecord));
  const double at2 = evals[2]["eval/scifact-test/ndcg_at_10"],
               at4 = evals[4]["eval/scifact-test/ndcg_at_10"];
  EXPECT_EQ(best["step"], at4 > at2 ? 4 : 2);
  EXPECT_EQ(best["score"].get<double>(), std::max(at2, at4));
  EXPECT_EQ(best["metric"], "eval/scifact-test/ndcg_at_10");
  EXPECT_EQ(
      json::parse(test::read_file(tmp / "run" / "best" / "trainer_state" / "state.json"))["step"],
      best["step"]);
  std::printf("ndcg@10 at step 2: %.6f, at step 4: %.6f; best/ is step %d\n", at2, at4,
              best["step"].get<int>());
}

// TensorBoard's own reader (the pinned tensorboard package) on <checkpoint.dir>/tensorboard/
// finds every number of metrics.jsonl at its step, as float32 (TensorBoard's simple_value).
TEST(Evaluation, TensorBoardReadsEveryScalarOfMetricsJsonl) {
  BIRECO_REQUIRE_PYTHON("tensorboard");
  test::TempDir tmp;
  const auto run =
      train(stage_config(tmp.path(), "run", eval_section(tmp.path()), "reconstruction"));
  ASSERT_EQ(run.status, 0) << run.output;
  test::write_file(tmp / "compare.py", R"(import json, struct, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
run = sys.argv[1]
acc = EventAccumulator(run + "/tensorboard", size_guidance={"scalars": 0})
acc.Reload()
found = {(tag, e.step): e.value for tag in acc.Tags()["scalars"] for e in acc.Scalars(tag)}
expected = {}
for line in open(run + "/metrics.jsonl"):
    record = json.loads(line)
    for key, value in record.items():
        if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
            expected[(key, record["step"])] = struct.unpack("f", struct.pack("f", value))[0]
bad = [(k, v, found.get(k)) for k, v in expected.items() if found.get(k) != v]
print(len(expected), "scalars in metrics.jsonl,", len(found), "in tensorboard; mismatches:", bad[:5])
sys.exit(0 if not bad and len(found) == len(expected) and any(k[0].startswith("eval/") for k in found) else 1)
)");
  const auto check = test::run_command("'" + test::python() + "' " + (tmp / "compare.py").string() +
                                       " " + (tmp / "run").string());
  EXPECT_EQ(check.status, 0) << check.output;
  std::printf("%s", check.output.c_str());
}

// Evaluation draws nothing from training's random streams and leaves the model in train mode:
// LoRA dropout (which draws from the CPU generator every step) then sees the same masks, and
// the final weights, adapter, optimizer state and saved generator state are the same bytes.
TEST(Evaluation, RunWithEvaluationEndsBitIdenticalToOneWithout) {
  test::TempDir tmp;
  const std::string lora = R"(, "lora": {"r": 4, "alpha": 8, "dropout": 0.1})";
  const auto with =
      train(stage_config(tmp.path(), "with", eval_section(tmp.path(), 1), "contrastive", 4, lora));
  ASSERT_EQ(with.status, 0) << with.output;
  const auto without = train(stage_config(tmp.path(), "without", "", "contrastive", 4, lora));
  ASSERT_EQ(without.status, 0) << without.output;
  EXPECT_EQ(eval_lines(tmp / "with").size(), 4u);
  EXPECT_TRUE(fs::is_directory(tmp / "with" / "best"));
  for (const char* file :
       {"model.safetensors", "adapter/adapter_model.safetensors",
        "trainer_state/optimizer.safetensors", "trainer_state/rng.safetensors"}) {
    const std::string a = test::read_file(tmp / "with" / "final" / file),
                      b = test::read_file(tmp / "without" / "final" / file);
    EXPECT_FALSE(a.empty()) << file;
    EXPECT_TRUE(a == b) << file << " differs between the runs with and without evaluation";
  }
}

// A stand-in that does what an evaluation must not leave behind: draws random numbers and
// leaves the model in eval mode.
class CarelessEvaluator : public Evaluator {
 public:
  std::map<std::string, double> evaluate(model::Transformer& model) override {
    model->eval();
    return {{"eval/x/score", torch::rand({1}).item<double>()}};
  }
};

TEST(Evaluation, EvaluateUntouchedRestoresModeAndRandomState) {
  config::ModelConfig options;
  options.path = (test::source_dir() / "configs/demo/tiny-llama").string();
  options.init = "random";
  options.device = "cpu";
  model::Transformer m = model::load(options, 1);
  m->train();
  torch::manual_seed(11);
  const torch::Tensor expected = torch::rand({4});
  torch::manual_seed(11);
  CarelessEvaluator careless;
  const auto scores = evaluate_untouched(careless, m);
  EXPECT_EQ(scores.size(), 1u);
  EXPECT_TRUE(m->is_training());
  EXPECT_TRUE(torch::rand({4}).equal(expected)) << "the evaluation's draw moved the CPU generator";
}

// Rank 0 evaluates (the only writer of metrics.jsonl and best/); rank 1 waits for its scores and
// joins best/'s save. The 2-rank run trains like the 1-rank run of twice the batch, so its
// scores agree (up to float rounding of the weights, which can swap near-tied documents).
TEST(Evaluation, TwoRanksEvaluateOnRankZeroLikeOneRank) {
  test::TempDir tmp;
  const auto one =
      train(stage_config(tmp.path(), "one", eval_section(tmp.path()), "contrastive", 4));
  ASSERT_EQ(one.status, 0) << one.output;
  const auto two = test::run_command(
      test::bireco_binary().string() + " launch --nproc-per-node 2 --master-port " +
      std::to_string(test::free_port()) + " -- train --config " +
      stage_config(tmp.path(), "two", eval_section(tmp.path()), "contrastive", 2).string());
  ASSERT_EQ(two.status, 0) << two.output;
  const auto a = eval_lines(tmp / "one"), b = eval_lines(tmp / "two");
  ASSERT_EQ(b.size(), 2u);
  for (const auto& [step, line] : a)
    for (const auto& [key, value] : line.items())
      if (key.rfind("eval/", 0) == 0)
        EXPECT_NEAR(b.at(step)[key].get<double>(), value.get<double>(), 1e-3) << key;
  verify_checkpoint(tmp / "two" / "best");
}

}  // namespace
}  // namespace bireco::train
