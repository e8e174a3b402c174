// The pieces of evaluation during training that live in eval/: the capped BEIR split (shared
// with `bireco eval --max-queries/--max-corpus`) and the `eval` section's tasks and checks.
#include <gtest/gtest.h>

#include <set>

#include "bireco/eval/datasets.h"
#include "bireco/eval/training_evaluator.h"
#include "test_support.h"

namespace bireco::eval {
namespace {
namespace fs = std::filesystem;

const fs::path kScifact = test::source_dir() / "data/demo/scifact-test";

TEST(TrainingEvaluator, CapKeepsTheFirstQueriesAndEveryDocumentJudgedForThem) {
  const BeirSplit full = read_beir(kScifact, "test");
  const BeirSplit capped = cap_beir(full, 7, 40);
  ASSERT_EQ(capped.queries.ids.size(), 7u);
  EXPECT_TRUE(
      std::equal(capped.queries.ids.begin(), capped.queries.ids.end(), full.queries.ids.begin()));
  EXPECT_EQ(capped.qrels.size(), 7u);
  ASSERT_EQ(capped.corpus.ids.size(), 40u);
  const std::set<std::string> corpus(capped.corpus.ids.begin(), capped.corpus.ids.end());
  for (const auto& [query, docs] : capped.qrels) {
    EXPECT_EQ(docs, full.qrels.at(query));
    for (const auto& [doc, grade] : docs)
      EXPECT_EQ(corpus.count(doc), 1u) << "judged document " << doc << " dropped";
  }
  // The rest are the corpus's first documents, in corpus order.
  std::vector<std::string> order;
  for (const auto& id : full.corpus.ids)
    if (corpus.count(id)) order.push_back(id);
  EXPECT_EQ(order, capped.corpus.ids);
  EXPECT_EQ(cap_beir(full, 0, 0).corpus.ids.size(), full.corpus.ids.size());
  EXPECT_EQ(cap_beir(full, 0, 0).queries.ids.size(), full.queries.ids.size());
}

TEST(TrainingEvaluator, TasksAreNamedAndCheckedWithTheirKeys) {
  config::StageConfig c;
  c.eval.retrieval = {(kScifact / "").string()};  // a trailing slash still names the folder
  c.eval.sts = {"some/where/pairs.jsonl"};
  c.eval.instruction = "Q";
  c.eval.instructions = {{"pairs", ""}};
  c.eval.metric_for_best = "eval/pairs/cosine_spearman";
  const auto tasks = training_tasks(c);
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[0].name, "scifact-test");
  EXPECT_EQ(tasks[0].kind, "retrieval");
  EXPECT_EQ(tasks[0].options.instruction, "Q");
  EXPECT_EQ(tasks[1].name, "pairs");
  EXPECT_EQ(tasks[1].options.instruction, "");

  auto bad = c;
  bad.eval.metric_for_best = "scifact-test/spearman";
  EXPECT_NE(test::error_of([&] { training_tasks(bad); })
                .find("eval.metric_for_best: 'scifact-test/spearman' is not a score of the eval "
                      "tasks (one of: "
                      "scifact-test/ndcg_at_10, "),
            std::string::npos);
  bad = c;
  bad.eval.instructions = {{"scifact", "x"}};
  EXPECT_NE(test::error_of([&] {
              training_tasks(bad);
            }).find("eval.instructions.scifact: no task is named 'scifact'"),
            std::string::npos);
  bad = c;
  bad.eval.reranking = {"other/pairs.jsonl"};
  EXPECT_NE(test::error_of([&] {
              training_tasks(bad);
            }).find("eval.sts[0]: a task is already named 'pairs'"),
            std::string::npos);
}

}  // namespace
}  // namespace bireco::eval
