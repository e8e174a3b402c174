// Pairs readers: the byte-offset index against a straight parse, the index cache, bad
// records (error text or count), instructions by dataset and parity, tsv columns.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bireco/config/load.h"
#include "bireco/data/sources.h"
#include "bireco/util/error.h"
#include "test_support.h"

namespace bireco::data {
namespace {
using ::bireco::test::error_of;
using nlohmann::json;
using test::TempDir;
using test::write_file;

// A jsonl file that exercises the scanner: unicode, escapes, CRLF, blank lines, a line longer
// than the 1 MiB read chunk, negatives as string and list, no final newline.
std::string tricky_jsonl() {
  std::string text;
  for (int i = 0; i < 300; ++i) {
    json r = {{"query", "q" + std::to_string(i) + " caf\u00e9 \"quoted\"\\n"},
              {"positive", "p" + std::to_string(i)}};
    if (i % 3 == 1) r["negative"] = "n" + std::to_string(i);
    if (i % 3 == 2) r["negative"] = {"a" + std::to_string(i), "b" + std::to_string(i)};
    if (i == 150) r["positive"] = std::string(1500000, 'x');
    text += r.dump();
    text += (i % 7 == 3) ? "\r\n" : "\n";
    if (i % 50 == 0) text += "\n   \n";
  }
  text += json({{"query", "last"}, {"positive", "no newline"}}).dump();
  return text;
}

TEST(DataReaders, IndexMatchesFullParse) {
  TempDir dir;
  write_file(dir / "nq.jsonl", tricky_jsonl());
  const auto dataset = open_pairs_file(dir / "nq.jsonl", {}, {});
  // The reference: every non-blank line of a getline pass, parsed whole.
  std::ifstream in(dir / "nq.jsonl", std::ios::binary);
  std::string line;
  int64_t i = 0;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \r") == std::string::npos) continue;
    const json r = json::parse(line);
    ASSERT_LT(i, dataset->size());
    const PairRecord got = dataset->read(i);
    EXPECT_EQ(got.query, r["query"].get<std::string>()) << "record " << i;
    EXPECT_EQ(got.positive, r["positive"].get<std::string>()) << "record " << i;
    std::vector<std::string> negatives;
    if (r.contains("negative") && r["negative"].is_string()) negatives = {r["negative"]};
    if (r.contains("negative") && r["negative"].is_array()) {
      negatives = r["negative"].get<std::vector<std::string>>();
    }
    EXPECT_EQ(got.negatives, negatives) << "record " << i;
    EXPECT_EQ(got.dataset, "nq");
    ++i;
  }
  EXPECT_EQ(i, 301);
  EXPECT_EQ(dataset->size(), i);
  EXPECT_EQ(dataset->skipped(), 0);
}

TEST(DataReaders, CachedIndexIsReusedAndInvalidatedWhenFileChanges) {
  TempDir dir;
  const auto file = dir / "fever.jsonl";
  write_file(file, "{\"query\":\"a\",\"positive\":\"b\"}\n{\"query\":\"c\",\"positive\":\"d\"}\n");
  auto valid = [](std::string_view line) { return parse_jsonl_pair(line, {}, nullptr); };
  IndexOptions options;
  options.validator_key = "jsonl";
  const LineIndex first = LineIndex::build(file, valid, options);
  EXPECT_FALSE(first.from_cache());
  EXPECT_TRUE(std::filesystem::exists(LineIndex::cache_path(file)));
  const LineIndex second = LineIndex::build(file, valid, options);
  EXPECT_TRUE(second.from_cache());
  ASSERT_EQ(second.size(), 2);
  EXPECT_EQ(second.entry(1).offset, first.entry(1).offset);
  EXPECT_EQ(second.entry(1).line, 2u);

  {  // append: the size changes
    std::ofstream(file, std::ios::app) << "{\"query\":\"e\",\"positive\":\"f\"}\n";
  }
  const LineIndex appended = LineIndex::build(file, valid, options);
  EXPECT_FALSE(appended.from_cache());
  EXPECT_EQ(appended.size(), 3);
  EXPECT_TRUE(LineIndex::build(file, valid, options).from_cache());

  // touch: only the mtime changes
  std::filesystem::last_write_time(
      file, std::filesystem::last_write_time(file) + std::chrono::seconds(5));
  EXPECT_FALSE(LineIndex::build(file, valid, options).from_cache());

  // another validator (format / field names) does not reuse it
  options.validator_key = "tsv";
  EXPECT_FALSE(LineIndex::build(file, valid, options).from_cache());
}

TEST(DataReaders, UnwritableCacheKeepsIndexInMemory) {
  TempDir dir;
  const auto file = dir / "nq.jsonl";
  write_file(file, "{\"query\":\"a\",\"positive\":\"b\"}\n");
  // A non-empty folder where the cache would go: writing it fails even as root.
  write_file(LineIndex::cache_path(file) / "keep", "x");
  const auto dataset = open_pairs_file(file, {}, {});
  ASSERT_EQ(dataset->size(), 1);
  EXPECT_EQ(dataset->read(0).positive, "b");
  EXPECT_TRUE(std::filesystem::is_directory(LineIndex::cache_path(file)));
}

struct BadCase {
  const char* line;
  const char* message;  // what follows "<file>:2: "
};

const BadCase kBadCases[] = {
    {R"({"query": "q", "positive": )", "malformed JSON (syntax error at byte"},
    // nlohmann throws out_of_range, not parse_error, for a number no double holds.
    {R"({"query": "q", "positive": "p", "score": 1e999})",
     "malformed JSON (number overflow parsing '1e999')"},
    {R"({"query": "q"})", "field 'positive' is missing"},
    {R"({"query": "q", "positive": null})", "field 'positive' is missing"},
    {R"({"query": "  ", "positive": "p"})", "field 'query' is empty"},
    {R"({"query": "q", "positive": "p", "negative": ""})", "field 'negative' is empty"},
    {R"({"query": 7, "positive": "p"})", "field 'query' must be a string, not number"},
    {R"({"query": "q", "positive": "p", "negative": {"a": 1}})",
     "field 'negative' must be a string or a list of strings, not object"},
    {R"({"query": "q", "positive": "p", "negative": ["n", 3]})",
     "field 'negative' must be a string or a list of strings, not a list holding number at "
     "negative[1]"},
    {R"(["q", "p"])", "expected a JSON object, not array"},
};

TEST(DataReaders, BadRecordIsErrorNamingFileLineAndField) {
  TempDir dir;
  const auto file = dir / "nq.jsonl";
  for (const BadCase& c : kBadCases) {
    write_file(file, std::string("{\"query\":\"a\",\"positive\":\"b\"}\n") + c.line + "\n");
    const std::string message = error_of([&] { open_pairs_file(file, {}, {}); });
    EXPECT_EQ(message.rfind(file.string() + ":2: " + c.message, 0), 0u)
        << "line: " << c.line << "\nmessage: " << message;
  }
}

TEST(DataReaders, SkippedBadRecordsAreCounted) {
  TempDir dir;
  const auto file = dir / "nq.jsonl";
  std::string text;
  int good = 0;
  for (const BadCase& c : kBadCases) {
    text += json({{"query", "q" + std::to_string(good)}, {"positive", "p"}}).dump() + "\n";
    ++good;
    text += std::string(c.line) + "\n";
  }
  write_file(file, text);
  SourceOptions options;
  options.on_bad_record = BadRecordPolicy::kSkip;
  const auto dataset = open_pairs_file(file, options, {});
  EXPECT_EQ(dataset->size(), good);
  EXPECT_EQ(dataset->skipped(), static_cast<int64_t>(std::size(kBadCases)));
  EXPECT_EQ(dataset->first_skipped().rfind(file.string() + ":2: malformed JSON", 0), 0u);
  for (int i = 0; i < good; ++i) EXPECT_EQ(dataset->read(i).query, "q" + std::to_string(i));
  // The cached index keeps the count; under `error` the cache is not trusted and the line
  // is named again.
  EXPECT_EQ(open_pairs_file(file, options, {})->skipped(), dataset->skipped());
  EXPECT_NE(error_of([&] { open_pairs_file(file, {}, {}); }).find(":2: malformed JSON"),
            std::string::npos);
}

TEST(DataReaders, InstructionsAlternateByParityForAllnli) {
  const auto table_file = test::source_dir() / "configs/instructions/e5.json";
  std::ifstream in(table_file);
  const json table = json::parse(in);
  ASSERT_EQ(table["allnli"].size(), 2u);

  TempDir dir;
  std::string text;
  for (int i = 0; i < 5; ++i) text += "{\"query\":\"q\",\"positive\":\"p\"}\n";
  write_file(dir / "allnli.jsonl", text);
  write_file(dir / "nq.jsonl", text);
  write_file(dir / "mine.jsonl", text);
  config::DataConfig data;
  data.instructions = table_file.string();
  data.default_instruction = "Find the answer";
  const InstructionTable instructions = InstructionTable::from_config(data);
  const auto allnli = open_pairs_file(dir / "allnli.jsonl", {}, instructions);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(allnli->read(i).instruction, table["allnli"][i % 2].get<std::string>()) << i;
  }
  EXPECT_EQ(open_pairs_file(dir / "nq.jsonl", {}, instructions)->read(1).instruction,
            table["nq"][0].get<std::string>());
  EXPECT_EQ(open_pairs_file(dir / "mine.jsonl", {}, instructions)->read(0).instruction,
            "Find the answer");

  data.instruction_overrides = {{"allnli", "Overridden"}};
  const auto overridden =
      open_pairs_file(dir / "allnli.jsonl", {}, InstructionTable::from_config(data));
  EXPECT_EQ(overridden->read(0).instruction, "Overridden");
  EXPECT_EQ(overridden->read(1).instruction, "Overridden");
}

TEST(DataReaders, PairsFieldNamesAndTsvColumns) {
  TempDir dir;
  SourceOptions options;
  options.fields = {"question", "answer", "hard"};
  write_file(dir / "qa.jsonl",
             R"({"question":"q1","answer":"a1","hard":["h1","h2"]})" "\n"
             R"({"question":"q2","answer":"a2"})" "\n");
  const auto jsonl = open_pairs_file(dir / "qa.jsonl", options, {});
  ASSERT_EQ(jsonl->size(), 2);
  EXPECT_EQ(jsonl->read(0).negatives, (std::vector<std::string>{"h1", "h2"}));
  EXPECT_EQ(jsonl->read(1).positive, "a2");

  write_file(dir / "named.tsv", "id\tanswer\tquestion\thard\n1\ta1\tq1\th1\n2\ta2\tq2\th2\n");
  const auto named = open_pairs_file(dir / "named.tsv", options, {});
  ASSERT_EQ(named->size(), 2);
  EXPECT_EQ(named->read(1).query, "q2");
  EXPECT_EQ(named->read(1).positive, "a2");
  EXPECT_EQ(named->read(1).negatives, (std::vector<std::string>{"h2"}));

  write_file(dir / "triples.tsv", "q1\tp1\tn1\r\nq2\tp2\tn2\tm2\n");
  const auto triples = open_pairs_file(dir / "triples.tsv", options, {});
  ASSERT_EQ(triples->size(), 2);
  EXPECT_EQ(triples->read(0).negatives, (std::vector<std::string>{"n1"}));
  EXPECT_EQ(triples->read(1).negatives, (std::vector<std::string>{"n2", "m2"}));

  write_file(dir / "short.tsv", "q1\tp1\nq2\n");
  EXPECT_EQ(error_of([&] { open_pairs_file(dir / "short.tsv", options, {}); }),
            (dir / "short.tsv").string() + ":2: field 'answer' is missing (column 2)");
}

TEST(DataReaders, OpenDatasetsExpandsGlobsInOrder) {
  TempDir dir;
  write_file(dir / "b.jsonl", "{\"query\":\"q\",\"positive\":\"p\"}\n");
  write_file(dir / "a.jsonl", "{\"query\":\"q\",\"positive\":\"p\"}\n");
  config::DataConfig data;
  data.train = {(dir / "*.jsonl").string()};
  const auto datasets = open_datasets(data);
  ASSERT_EQ(datasets.size(), 2u);
  EXPECT_EQ(datasets[0]->name(), "a");
  EXPECT_EQ(datasets[1]->name(), "b");
  data.train = {(dir / "*.none").string()};
  EXPECT_NE(error_of([&] { open_datasets(data); }).find("matches no file"), std::string::npos);
}

// bireco's own `<file>.idx.bin` caches, written beside the data on the first run, are not
// data on the second (`data.train: dir/*`); naming one is an error.
TEST(DataReaders, IndexCachesAreNeverReadAsData) {
  TempDir dir;
  write_file(dir / "a.jsonl", "{\"query\":\"q\",\"positive\":\"p\"}\n");
  write_file(dir / "b.jsonl", "{\"query\":\"q\",\"positive\":\"p\"}\n");
  config::DataConfig data;
  data.train = {(dir / "*").string()};
  for (int run = 0; run < 2; ++run) {
    const auto datasets = open_datasets(data);
    ASSERT_EQ(datasets.size(), 2u) << "run " << run;
    EXPECT_EQ(datasets[1]->name(), "b");
  }
  ASSERT_TRUE(std::filesystem::exists(dir / "a.jsonl.idx.bin"));
  EXPECT_EQ(config::expand_glob((dir / "*").string()),
            (std::vector<std::filesystem::path>{dir / "a.jsonl", dir / "b.jsonl"}));
  data.train = {(dir / "a.jsonl.idx.bin").string()};
  EXPECT_NE(error_of([&] { open_datasets(data); }).find("is a line-index cache"),
            std::string::npos);
}

// The start-up check (config::expand_glob) and the loader expand a pattern alike, folder
// wildcards included.
TEST(DataReaders, PreCheckAndLoaderExpandGlobsAlike) {
  TempDir dir;
  write_file(dir / "s1" / "x.jsonl", "{\"query\":\"q\",\"positive\":\"p\"}\n");
  write_file(dir / "s2" / "x.jsonl",
             "{\"query\":\"q\",\"positive\":\"p\"}\n{\"query\":\"q\",\"positive\":\"p\"}\n");
  const std::string pattern = (dir / "s*" / "x.jsonl").string();
  EXPECT_EQ(config::expand_glob(pattern),
            (std::vector<std::filesystem::path>{dir / "s1" / "x.jsonl", dir / "s2" / "x.jsonl"}));
  config::DataConfig data;
  data.train = {pattern};
  const auto datasets = open_datasets(data);
  ASSERT_EQ(datasets.size(), 2u);
  EXPECT_EQ(datasets[1]->size(), 2);
}

// A folder is one dataset: its shards in sorted order, named by the folder, with one
// instruction that alternates by record number across the shards (allnli-style two entries).
TEST(DataReaders, FolderOfShardsIsOneDatasetWithOneInstruction) {
  TempDir dir;
  for (int s = 0; s < 3; ++s) {
    write_file(dir / "nq" / ("part-" + std::to_string(s) + ".jsonl"),
               "{\"query\":\"q" + std::to_string(2 * s) + "\",\"positive\":\"p\"}\n{\"query\":\"q" +
                   std::to_string(2 * s + 1) + "\",\"positive\":\"p\"}\n");
  }
  write_file(dir / "nq" / ".hidden.jsonl", "not data\n");
  write_file(dir / "nq" / "README.md", "not data\n");
  write_file(dir / "table.json", R"({"nq": ["even", "odd"]})");
  config::DataConfig data;
  data.train = {(dir / "nq").string()};
  data.instructions = (dir / "table.json").string();
  for (int run = 0; run < 2; ++run) {  // the second run finds the shards' caches beside them
    const auto datasets = open_datasets(data);
    ASSERT_EQ(datasets.size(), 1u);
    EXPECT_EQ(datasets[0]->name(), "nq");
    ASSERT_EQ(datasets[0]->size(), 6);
    for (int64_t i = 0; i < 6; ++i) {
      const PairRecord r = datasets[0]->read(i);
      EXPECT_EQ(r.query, "q" + std::to_string(i));
      EXPECT_EQ(r.dataset, "nq");
      EXPECT_EQ(r.instruction, i % 2 == 0 ? "even" : "odd") << i;
    }
  }
  write_file(dir / "empty" / "notes.txt", "x\n");
  data.train = {(dir / "empty").string()};
  EXPECT_NE(error_of([&] { open_datasets(data); }).find("holds no .jsonl or .tsv file"),
            std::string::npos);
}

// 300 shard files under a descriptor limit of 64: no descriptor is held per file, whether the
// shards are 300 datasets (a glob) or one (their folder).
TEST(DataReaders, ThreeHundredShardsUnderALowDescriptorLimit) {
  TempDir dir;
  for (int s = 0; s < 300; ++s) {
    char name[32];
    std::snprintf(name, sizeof name, "shard-%03d.jsonl", s);
    write_file(dir / "big" / name, "{\"query\":\"q" + std::to_string(s) +
                                       "\",\"positive\":\"p\"}\n"
                                       "{\"query\":\"r\",\"positive\":\"p\"}\n");
  }
  struct rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  struct rlimit low = saved;
  low.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::string failure;
  try {
    config::DataConfig data;
    for (const std::string& entry : {(dir / "big" / "*.jsonl").string(), (dir / "big").string()}) {
      data.train = {entry};
      const auto datasets = open_datasets(data);
      int64_t records = 0;
      for (const auto& d : datasets) {
        for (int64_t i = 0; i < d->size(); ++i) records += d->read(i).positive == "p";
      }
      if (records != 600) failure += entry + ": read " + std::to_string(records) + " records; ";
      if (datasets.size() != (entry.back() == 'l' ? 300u : 1u))
        failure += entry + ": wrong dataset count; ";
    }
  } catch (const std::exception& e) {
    failure = e.what();
  }
  ::setrlimit(RLIMIT_NOFILE, &saved);
  EXPECT_EQ(failure, "");
}

}  // namespace
}  // namespace bireco::data
