// `bireco eval` end to end on a tiny model: retrieval on the demo SciFact folder (numbers
// meaningless; the files' format, run/results consistency and the cache are checked), STS
// and reranking on small files.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bireco/eval/datasets.h"
#include "bireco/eval/metrics.h"
#include "bireco/eval/run_file.h"
#include "test_support.h"

namespace bireco::eval {
namespace {

namespace fs = std::filesystem;

// The qwen2 HF-parity fixture with the tiny SentencePiece-style tokenizer (unknown
// characters become <unk>, so any text encodes), default embedding settings except
// max_length 64 (SciFact abstracts are ~600 of its tokens; this keeps the test a few seconds).
fs::path make_model(const test::TempDir& tmp) {
  const fs::path dir = tmp / "model";
  fs::create_directories(dir);
  const fs::path model = test::data_dir() / "hf-parity" / "qwen2";
  fs::copy_file(model / "config.json", dir / "config.json");
  fs::copy_file(model / "model.safetensors", dir / "model.safetensors");
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    fs::copy_file(test::data_dir() / "tokenizers" / "tiny-sp" / f, dir / f);
  test::write_file(dir / "bireco_embedding.json", R"({"max_length": 64})");
  return dir;
}

nlohmann::json read_json(const fs::path& file) { return nlohmann::json::parse(test::read_file(file)); }

TEST(EvalCli, RetrievalWritesTrecRunAndMtebResults) {
  test::TempDir tmp;
  const fs::path model = make_model(tmp), data = test::source_dir() / "data" / "demo" / "scifact-test";
  const std::string command = test::bireco_binary().string() + " eval --device cpu --task retrieval --model " +
                              model.string() + " --data " + data.string() + " --cache " + (tmp / "cache").string() +
                              " --instruction 'Given a scientific claim, retrieve documents'";
  const auto r = test::run_command(command + " --out " + (tmp / "r1.json").string() + " --run " + (tmp / "run.trec").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const auto results = read_json(tmp / "r1.json");
  EXPECT_EQ(results["task"], "retrieval");
  const auto& s = results["scores"];
  for (const char* key : {"ndcg_at_10", "mrr_at_10", "map_at_100", "recall_at_100", "main_score"}) {
    ASSERT_TRUE(s.contains(key)) << key;
    EXPECT_GE(s[key].get<double>(), 0.0);
    EXPECT_LE(s[key].get<double>(), 1.0);
  }
  EXPECT_EQ(s["main_score"], s["ndcg_at_10"]);
  EXPECT_EQ(results["queries"], 300);
  EXPECT_EQ(results["corpus"], 1000);
  EXPECT_EQ(results["corpus_from_cache"], false);

  // Run file: `qid Q0 docid rank score tag`, 100 per query, ranks 1.., scores not increasing.
  std::ifstream in(tmp / "run.trec");
  std::string line, last_qid;
  int64_t lines = 0, expected_rank = 1;
  double last_score = 0;
  while (std::getline(in, line)) {
    std::istringstream cells(line);
    std::string qid, q0, docid, tag;
    int64_t rank = 0;
    double score = 0;
    ASSERT_TRUE(static_cast<bool>(cells >> qid >> q0 >> docid >> rank >> score >> tag)) << line;
    EXPECT_EQ(q0, "Q0");
    EXPECT_EQ(tag, "bireco");
    if (qid != last_qid) expected_rank = 1;
    else EXPECT_LE(score, last_score) << line;
    EXPECT_EQ(rank, expected_rank++) << line;
    last_qid = qid;
    last_score = score;
    ++lines;
  }
  EXPECT_EQ(lines, 300 * 100);
  // The run file scored by the metrics gives the results file's numbers (scores printed
  // with 9 digits round-trip the float32 scores, so the order is the same).
  const RetrievalScores again = evaluate_retrieval(read_qrels(data / "qrels" / "test.tsv"), read_trec_run(tmp / "run.trec"));
  EXPECT_NEAR(again.ndcg_at_10, s["ndcg_at_10"].get<double>(), 1e-12);
  EXPECT_NEAR(again.recall_at_100, s["recall_at_100"].get<double>(), 1e-12);

  // Second run: the corpus comes from the cache and the scores are the same.
  const auto r2 = test::run_command(command + " --out " + (tmp / "r2.json").string());
  ASSERT_EQ(r2.status, 0) << r2.output;
  const auto cached = read_json(tmp / "r2.json");
  EXPECT_EQ(cached["corpus_from_cache"], true);
  EXPECT_EQ(cached["scores"], results["scores"]);
}

// An ArguAna-shaped set: every query is also a corpus document (same id, same text) and its
// relevant document is another one (its counter-argument). As BEIR and MTEB, the query's own
// document is not ranked; --keep-identical-ids ranks it (first: the same text embeds the same).
// Both results equal pytrec_eval's on the run file written.
TEST(EvalCli, RetrievalDropsTheQuerysOwnDocumentAsBeir) {
  BIRECO_REQUIRE_PYTHON("pytrec_eval");
  test::TempDir tmp;
  const fs::path model = make_model(tmp), data = tmp / "arguana";
  const std::vector<std::string> texts = {"a b c", "c b a a", "b b",     "a c c a b",
                                          "c",     "a a a b", "b c b c", "c a b"};
  std::string corpus, queries;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string doc = "{\"_id\": \"arg" + std::to_string(i) +
                            "\", \"title\": \"\", \"text\": \"" + texts[i] + "\"}\n";
    corpus += doc;
    if (i < 4) queries += doc;  // arg0..arg3 are queries too
  }
  test::write_file(data / "corpus.jsonl", corpus);
  test::write_file(data / "queries.jsonl", queries);
  test::write_file(
      data / "qrels" / "test.tsv",
      "query-id\tcorpus-id\tscore\narg0\targ1\t1\narg1\targ0\t1\narg2\targ6\t1\narg3\targ5\t1\n");
  const std::string command = test::bireco_binary().string() +
                              " eval --device cpu --task retrieval --model " + model.string() +
                              " --data " + data.string();
  const auto scores_and_run = [&](const std::string& name, const std::string& flags) {
    const auto r =
        test::run_command(command + flags + " --out " + (tmp / (name + ".json")).string() +
                          " --run " + (tmp / (name + ".trec")).string());
    EXPECT_EQ(r.status, 0) << r.output;
    return std::make_pair(read_json(tmp / (name + ".json")), read_trec_run(tmp / (name + ".trec")));
  };
  const auto [beir, beir_run] = scores_and_run("beir", "");
  const auto [kept, kept_run] = scores_and_run("kept", " --keep-identical-ids");
  EXPECT_EQ(beir["ignore_identical_ids"], true);
  EXPECT_EQ(kept["ignore_identical_ids"], false);
  ASSERT_EQ(beir_run.size(), 4u);
  for (const auto& [qid, docs] : beir_run) {
    EXPECT_EQ(docs.size(), texts.size() - 1) << qid;  // every document but the query's own
    for (const auto& d : docs) EXPECT_NE(d.docid, qid);
    const auto& with_self = kept_run.at(qid);
    ASSERT_EQ(with_self.size(), texts.size()) << qid;
    EXPECT_EQ(with_self.front().docid, qid);  // its own text ranks first when kept
    EXPECT_NEAR(with_self.front().score, 1.0, 1e-5);
  }
  // The self-match is never relevant, so keeping it pushes every relevant document down.
  EXPECT_LT(kept["scores"]["ndcg_at_10"].get<double>(), beir["scores"]["ndcg_at_10"].get<double>());
  EXPECT_LT(kept["scores"]["mrr_at_10"].get<double>(), beir["scores"]["mrr_at_10"].get<double>());

  const auto script = test::source_dir() / "tests" / "eval" / "pytrec_eval_metrics.py";
  for (const std::string name : {"beir", "kept"}) {
    const auto r = test::run_command("'" + test::python() + "' " + script.string() + " " +
                                     (data / "qrels" / "test.tsv").string() + " " +
                                     (tmp / (name + ".trec")).string());
    ASSERT_EQ(r.status, 0) << r.output;
    const auto ref = nlohmann::json::parse(r.output);
    const auto ours = read_json(tmp / (name + ".json"))["scores"];
    for (const char* key : {"ndcg_at_10", "mrr_at_10", "map_at_100", "recall_at_100"})
      EXPECT_NEAR(ours[key].get<double>(), ref[key].get<double>(), 1e-9) << name << " " << key;
  }
}

TEST(EvalCli, StsAndRerankingWriteMainScores) {
  test::TempDir tmp;
  const fs::path model = make_model(tmp);
  test::write_file(tmp / "sts.jsonl",
                   "{\"sentence1\": \"a b\", \"sentence2\": \"a b\", \"score\": 5}\n"
                   "{\"sentence1\": \"abc\", \"sentence2\": \"c a\", \"score\": 2.5}\n"
                   "{\"sentence1\": \"b\", \"sentence2\": \"a c a c\", \"score\": 0}\n");
  const auto sts = test::run_command(test::bireco_binary().string() + " eval --device cpu --task sts --model " +
                                     model.string() + " --data " + (tmp / "sts.jsonl").string() + " --out " +
                                     (tmp / "sts.json").string());
  ASSERT_EQ(sts.status, 0) << sts.output;
  const auto s = read_json(tmp / "sts.json");
  EXPECT_EQ(s["task"], "sts");
  EXPECT_EQ(s["scores"]["main_score"], s["scores"]["cosine_spearman"]);
  EXPECT_TRUE(s["scores"].contains("cosine_pearson"));
  EXPECT_EQ(s["pairs"], 3);

  test::write_file(tmp / "rerank.jsonl",
                   "{\"query\": \"a b\", \"positive\": [\"a b\"], \"negative\": [\"c\", \"b c a\"]}\n"
                   "{\"query\": \"c\", \"positive\": [\"c c\", \"a\"], \"negative\": [\"a b\"]}\n"
                   "{\"query\": \"c\", \"positive\": [\"c c\"], \"negative\": []}\n");
  const auto rr = test::run_command(test::bireco_binary().string() + " eval --device cpu --task reranking --model " +
                                    model.string() + " --data " + (tmp / "rerank.jsonl").string() + " --out " +
                                    (tmp / "rerank.json").string());
  ASSERT_EQ(rr.status, 0) << rr.output;
  const auto k = read_json(tmp / "rerank.json");
  EXPECT_EQ(k["scores"]["main_score"], k["scores"]["map"]);
  EXPECT_TRUE(k["scores"].contains("mrr_at_10"));
  EXPECT_EQ(k["samples"], 2);  // the one without negatives is skipped, as MTEB does
}

// scripts/reproduce.sh's report reads the files `bireco eval` writes (SciFact's nDCG@10, STS-B's
// cosine Spearman): fed real eval outputs in its layout, it writes the table with their values.
TEST(EvalCli, ReproduceReportReadsWhatEvalWrites) {
  test::TempDir tmp;
  const fs::path model = make_model(tmp), data = test::source_dir() / "data" / "demo" / "scifact-test";
  test::write_file(tmp / "sts.jsonl",
                   "{\"sentence1\": \"a b\", \"sentence2\": \"a b\", \"score\": 5}\n"
                   "{\"sentence1\": \"abc\", \"sentence2\": \"c a\", \"score\": 2.5}\n"
                   "{\"sentence1\": \"b\", \"sentence2\": \"a c a c\", \"score\": 0}\n");
  const std::string eval = test::bireco_binary().string() + " eval --device cpu --model " + model.string();
  const fs::path first = tmp / "out" / "untrained";
  fs::create_directories(first);
  auto r = test::run_command(eval + " --task retrieval --max-queries 5 --max-corpus 20 --data " + data.string() +
                             " --out " + (first / "scifact.json").string());
  ASSERT_EQ(r.status, 0) << r.output;
  r = test::run_command(eval + " --task sts --data " + (tmp / "sts.jsonl").string() + " --out " +
                        (first / "stsb.json").string());
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* arm : {"stage2_only", "stage1_stage2"}) {
    fs::create_directories(tmp / "out" / "seed1" / arm);
    for (const char* f : {"scifact.json", "stsb.json"}) fs::copy_file(first / f, tmp / "out" / "seed1" / arm / f);
  }
  r = test::run_command("/usr/bin/python3 " + (test::source_dir() / "scripts/lib/reproduce_report.py").string() +
                        " " + (tmp / "out").string() + " 1 quick 1 test");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto results = read_json(tmp / "out" / "results.json");
  const auto stsb = read_json(first / "stsb.json")["scores"]["cosine_spearman"].get<double>();
  EXPECT_DOUBLE_EQ(results["untrained"]["stsb"].get<double>(), stsb);
  EXPECT_DOUBLE_EQ(results["untrained"]["scifact"].get<double>(),
                   read_json(first / "scifact.json")["scores"]["ndcg_at_10"].get<double>());
  EXPECT_TRUE(fs::exists(tmp / "out" / "results.png"));
  EXPECT_NE(test::read_file(tmp / "out" / "results.md").find("STS-B Spearman"), std::string::npos);
}

}  // namespace
}  // namespace bireco::eval
