// Stage configs: JSON and YAML read to the same structs; overrides; every error names its
// key path (and file:line); the generated reference matches configs/README.md.
#include <gtest/gtest.h>

#include <map>

#include "bireco/config/load.h"
#include "bireco/util/error.h"
#include "test_support.h"

namespace bireco::config {
namespace {
using ::bireco::test::error_of;
using test::TempDir;
using test::write_file;

const char* kJson = R"({
  "stage": "contrastive",
  "model": {"path": "models/tiny", "dtype": "bfloat16",
            "lora": {"r": 8, "alpha": 16, "targets": ["q_proj", "v_proj"]}},
  "text": {"max_length": 128, "template": "<s>{text}</s>"},
  "data": {"train": ["a/*.jsonl", "b.jsonl"], "instruction_overrides": {"nq": "Find it"}},
  "objective": {"contrastive": {"scale": 20, "hard_negatives": 3}},
  "optim": {"lr": 2e-4, "betas": [0.9, 0.95]},
  "train": {"batch_size": 4, "grad_accum": 2, "max_steps": 10},
  "checkpoint": {"dir": "out/x", "every": 5}
})";

const char* kYaml = R"(stage: contrastive
model:
  path: models/tiny
  dtype: bfloat16
  lora: {r: 8, alpha: 16, targets: [q_proj, v_proj]}
text:
  max_length: 128
  template: "<s>{text}</s>"
data:
  train: [a/*.jsonl, b.jsonl]
  instruction_overrides: {nq: Find it}
objective:
  contrastive: {scale: 20, hard_negatives: 3}
optim:
  lr: 2.0e-4
  betas: [0.9, 0.95]
train: {batch_size: 4, grad_accum: 2, max_steps: 10}
checkpoint: {dir: out/x, every: 5}
)";

StageConfig from_json(const std::string& text) { return read_stage(parse_json_text(text, "c.json")); }
StageConfig from_yaml(const std::string& text) { return read_stage(parse_yaml_text(text, "c.yaml")); }

TEST(StageConfig, JsonAndYamlGiveTheSameStructs) {
  const StageConfig a = from_json(kJson);
  const StageConfig b = from_yaml(kYaml);
  EXPECT_EQ(to_json(a), to_json(b));
  EXPECT_EQ(a.stage, "contrastive");
  EXPECT_EQ(a.model.dtype, "bfloat16");
  EXPECT_TRUE(a.model.use_lora);
  EXPECT_EQ(a.model.lora.r, 8);
  EXPECT_EQ(a.model.lora.targets, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_DOUBLE_EQ(a.model.lora.dropout, 0.05);  // default kept
  EXPECT_EQ(a.data.train, (std::vector<std::string>{"a/*.jsonl", "b.jsonl"}));
  EXPECT_EQ(a.data.instruction_overrides.at("nq"), "Find it");
  EXPECT_DOUBLE_EQ(a.optim.lr, 2e-4);
  EXPECT_EQ(a.optim.betas, (std::vector<double>{0.9, 0.95}));
  EXPECT_EQ(a.objective.contrastive.hard_negatives, 3);
  EXPECT_EQ(a.train.grad_accum, 2);
  EXPECT_EQ(a.checkpoint.every, 5);
}

TEST(StageConfig, DefaultsFollowTheDesign) {
  const StageConfig c = from_json(R"({"model": {"path": "m"}})");
  EXPECT_EQ(c.stage, "reconstruction");
  EXPECT_DOUBLE_EQ(c.objective.reconstruction.d2q_weight, 0.8);
  EXPECT_DOUBLE_EQ(c.objective.reconstruction.q2d_weight, 0.2);
  EXPECT_DOUBLE_EQ(c.objective.contrastive.scale, 50);
  EXPECT_FALSE(c.model.use_lora);
  EXPECT_EQ(c.text.template_, "<|start_header_id|>user<|end_header_id|>\n\n{text}<|eot_id|>");
  EXPECT_EQ(c.text.instruction_format, "{instruction}; {text}");
}

TEST(StageConfig, LoraNullMeansFullFineTuning) {
  EXPECT_FALSE(from_yaml("model: {path: m, lora: null}").model.use_lora);
  EXPECT_TRUE(from_yaml("model: {path: m, lora: {}}").model.use_lora);
}

TEST(StageConfig, SingleStringIsAListOfOne) {
  EXPECT_EQ(from_yaml("model: {path: m}\ndata: {train: x.jsonl}").data.train,
            std::vector<std::string>{"x.jsonl"});
}

TEST(StageConfig, OverridesApplyInOrderWithYamlTyping) {
  Document doc = parse_json_text(kJson, "c.json");
  apply_override(doc, "train.max_steps=99");
  apply_override(doc, "optim.betas=[0.8, 0.9]");
  apply_override(doc, "model.lora=null");
  apply_override(doc, "text.template='{text}'");
  apply_override(doc, "checkpoint.dir=first");
  apply_override(doc, "checkpoint.dir=second");
  const StageConfig c = read_stage(doc);
  EXPECT_EQ(c.train.max_steps, 99);
  EXPECT_EQ(c.optim.betas, (std::vector<double>{0.8, 0.9}));
  EXPECT_FALSE(c.model.use_lora);
  EXPECT_EQ(c.text.template_, "{text}");
  EXPECT_EQ(c.checkpoint.dir, "second");
}

TEST(StageConfig, OverrideCreatesSectionsThroughNull) {
  Document doc = parse_yaml_text("model: {path: m, lora: null}", "c.yaml");
  apply_override(doc, "model.lora.r=4");
  const StageConfig c = read_stage(doc);
  EXPECT_TRUE(c.model.use_lora);
  EXPECT_EQ(c.model.lora.r, 4);
}

TEST(StageConfig, UnknownKeyNamesPathLineAndClosestKey) {
  const std::string e = error_of([] {
    from_json("{\n  \"model\": {\"path\": \"m\",\n    \"lora\": {\"rank\": 8}}\n}");
  });
  EXPECT_EQ(e, "c.json:3: unknown key 'model.lora.rank'; did you mean 'model.lora.r'?");
}

TEST(StageConfig, UnknownKeyInYamlNamesLine) {
  const std::string e = error_of([] { from_yaml("model:\n  path: m\ntrain:\n  batch_sise: 4\n"); });
  EXPECT_EQ(e, "c.yaml:4: unknown key 'train.batch_sise'; did you mean 'train.batch_size'?");
}

TEST(StageConfig, KeyInWrongSectionSuggestsItsSection) {
  const std::string e = error_of([] { from_yaml("model: {path: m}\ntrain: {lr: 0.1}"); });
  EXPECT_NE(e.find("unknown key 'train.lr'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'optim.lr'?"), std::string::npos) << e;
}

TEST(StageConfig, UnknownTopLevelSection) {
  const std::string e = error_of([] { from_yaml("model: {path: m}\noptimizer: {lr: 0.1}"); });
  EXPECT_NE(e.find("unknown key 'optimizer'; did you mean 'optim'?"), std::string::npos) << e;
}

TEST(StageConfig, WrongTypeNamesPathExpectedAndFound) {
  EXPECT_EQ(error_of([] { from_yaml("model: {path: m}\ntrain: {batch_size: \"32\"}"); }),
            "c.yaml:2: train.batch_size: expected an integer, found a string (\"32\")");
  EXPECT_EQ(error_of([] { from_yaml("model: {path: m}\ntrain: {batch_size: 3.5}"); }),
            "c.yaml:2: train.batch_size: expected an integer, found a number (3.5)");
  EXPECT_EQ(error_of([] { from_yaml("model: {path: m, gradient_checkpointing: 1}"); }),
            "c.yaml:1: model.gradient_checkpointing: expected a boolean (true or false), found "
            "an integer (1)");
  EXPECT_EQ(error_of([] { from_yaml("model: {path: m}\noptim: {betas: [0.9, x]}"); }),
            "c.yaml:2: optim.betas[1]: expected a number, found a string (\"x\")");
  EXPECT_EQ(error_of([] { from_yaml("model: 3"); }),
            "c.yaml:1: model: expected a mapping (section), found an integer (3)");
}

TEST(StageConfig, WrongTypeFromOverrideSaysSet) {
  Document doc = parse_yaml_text("model: {path: m}", "c.yaml");
  apply_override(doc, "train.max_steps=many");
  EXPECT_EQ(error_of([&] { read_stage(doc); }),
            "--set: train.max_steps: expected an integer, found a string (\"many\")");
}

TEST(StageConfig, ChoiceErrorSuggests) {
  EXPECT_EQ(error_of([] { from_yaml("model: {path: m, dtype: bf16}"); }),
            "c.yaml:1: model.dtype: 'bf16' is not one of auto, float32, bfloat16, float16; did you "
            "mean 'bfloat16'?");
  const std::string e = error_of([] { from_yaml("model: {path: m}\nstage: recon"); });
  EXPECT_NE(e.find("c.yaml:2: stage: 'recon' is not one of"), std::string::npos) << e;
}

TEST(StageConfig, RangeErrorsNameTheKey) {
  EXPECT_NE(error_of([] { from_yaml("model: {path: m}\ntrain: {batch_size: 0}"); })
                .find("train.batch_size: must be > 0"),
            std::string::npos);
  EXPECT_NE(error_of([] { from_yaml("model: {path: m}\noptim: {betas: [0.9]}"); })
                .find("optim.betas: must hold exactly two numbers"),
            std::string::npos);
  EXPECT_NE(error_of([] { from_yaml("model: {path: m, lora: {targets: [qproj]}}"); })
                .find("model.lora.targets[0]: 'qproj' is not one of"),
            std::string::npos);
  EXPECT_NE(error_of([] { from_yaml("model: {}"); }).find("model.path: is required"),
            std::string::npos);
  EXPECT_NE(error_of([] { from_yaml("model: {path: m}\ntext: {template: abc}"); })
                .find("text.template: must contain {text}"),
            std::string::npos);
}

TEST(StageConfig, EvalSectionReadsAndChecksItsKeys) {
  const StageConfig c = from_yaml(
      "model: {path: m}\neval: {every: 50, retrieval: [d/scifact], sts: s.tsv, max_queries: 100, "
      "max_corpus: 1000, metric_for_best: scifact/ndcg_at_10, instructions: {scifact: Find}}");
  EXPECT_EQ(c.eval.every, 50);
  EXPECT_EQ(c.eval.retrieval, std::vector<std::string>{"d/scifact"});
  EXPECT_EQ(c.eval.sts, std::vector<std::string>{"s.tsv"});
  EXPECT_EQ(c.eval.max_queries, 100);
  EXPECT_EQ(c.eval.instructions.at("scifact"), "Find");
  EXPECT_TRUE(c.eval.enabled());
  EXPECT_FALSE(StageConfig().eval.enabled());  // off by default
  EXPECT_NE(error_of([] {
              from_yaml("model: {path: m}\neval: {every: -1}");
            }).find("eval.every: must be >= 0"),
            std::string::npos);
  EXPECT_NE(error_of([] { from_yaml("model: {path: m}\neval: {metric_for_best: x/ndcg_at_10}"); })
                .find("c.yaml:2: eval.metric_for_best: needs a task in eval.retrieval, "
                      "eval.reranking or eval.sts"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              from_yaml("model: {path: m}\neval: {every_steps: 5}");
            }).find("unknown key 'eval.every_steps'"),
            std::string::npos);
}

TEST(StageConfig, EnvExpansionInPaths) {
  ::setenv("BIRECO_TEST_MODELS", "/models", 1);
  const StageConfig c = from_yaml(
      "model: {path: '${BIRECO_TEST_MODELS}/llama'}\ndata: {train: ['${BIRECO_TEST_MODELS}/d']}\n"
      "text: {template: '$${text}'}");
  EXPECT_EQ(c.model.path, "/models/llama");
  EXPECT_EQ(c.data.train[0], "/models/d");
  EXPECT_EQ(c.text.template_, "$${text}");  // not a path: left alone
  ::unsetenv("BIRECO_TEST_UNSET_VAR");
  EXPECT_EQ(error_of([] { from_yaml("model: {path: '${BIRECO_TEST_UNSET_VAR}/x'}"); }),
            "c.yaml:1: model.path: environment variable BIRECO_TEST_UNSET_VAR is not set (used "
            "in '${BIRECO_TEST_UNSET_VAR}/x')");
}

// ${V:-default} and ${V-default} as in the shell (the default expanded in turn); ${V} unset
// stays an error naming V.
TEST(StageConfig, EnvDefaultsAsInTheShell) {
  ::unsetenv("BIRECO_TEST_UNSET_VAR");
  ::setenv("BIRECO_TEST_EMPTY_VAR", "", 1);
  ::setenv("BIRECO_TEST_MODELS", "/models", 1);
  EXPECT_EQ(expand_env("${BIRECO_TEST_UNSET_VAR:-/data}/x", "k"), "/data/x");
  EXPECT_EQ(expand_env("${BIRECO_TEST_UNSET_VAR-/data}/x", "k"), "/data/x");
  EXPECT_EQ(expand_env("${BIRECO_TEST_EMPTY_VAR:-/data}/x", "k"), "/data/x");
  EXPECT_EQ(expand_env("${BIRECO_TEST_EMPTY_VAR-/data}/x", "k"), "/x");
  EXPECT_EQ(expand_env("${BIRECO_TEST_MODELS:-/data}/x", "k"), "/models/x");
  EXPECT_EQ(expand_env("${BIRECO_TEST_UNSET_VAR:-${BIRECO_TEST_MODELS}/d}", "k"), "/models/d");
  EXPECT_EQ(expand_env("${BIRECO_TEST_UNSET_VAR:-}a", "k"), "a");
  const StageConfig c = from_yaml("model: {path: '${BIRECO_TEST_UNSET_VAR:-models}/llama'}");
  EXPECT_EQ(c.model.path, "models/llama");
  EXPECT_EQ(error_of([] { expand_env("${BIRECO_TEST_UNSET_VAR}/x", "k"); }),
            "k: environment variable BIRECO_TEST_UNSET_VAR is not set (used in "
            "'${BIRECO_TEST_UNSET_VAR}/x')");
  EXPECT_EQ(error_of([] { expand_env("${BIRECO_TEST_UNSET_VAR:?no}", "k"); }),
            "k: '${BIRECO_TEST_UNSET_VAR:?no}' in '${BIRECO_TEST_UNSET_VAR:?no}' is not ${NAME}, "
            "${NAME:-default} or ${NAME-default}");
  ::unsetenv("BIRECO_TEST_EMPTY_VAR");
}

// `--set text.template={text}` is a YAML mapping: the type error says to quote it.
TEST(StageConfig, MappingWhereTextIsExpectedHintsToQuote) {
  Document doc = parse_yaml_text("model: {path: m}", "c.yaml");
  apply_override(doc, "text.template={text}");
  EXPECT_EQ(
      error_of([&] { read_stage(doc); }),
      "--set: text.template: expected a string, found a mapping; YAML reads {...} as a mapping "
      "and [...] as a list: to give a string, quote it (--set 'text.template=\"{text}\"')");
  Document quoted = parse_yaml_text("model: {path: m}", "c.yaml");
  apply_override(quoted, "text.template=\"<s>{text}\"");
  EXPECT_EQ(read_stage(quoted).text.template_, "<s>{text}");
  EXPECT_NE(
      error_of([] { from_yaml("model: {path: m}\ntext: {template: {text}}"); })
          .find(
              "c.yaml:2: text.template: expected a string, found a mapping; YAML reads {...} as a "
              "mapping and [...] as a list: to give a string, quote it ('{text}')"),
      std::string::npos);
}

// YAML 1.1 merge keys: the anchored mapping's keys join the mapping holding `<<`; keys written
// there win, then the earlier mappings of a list; merged keys keep the anchor's lines.
TEST(StageConfig, YamlMergeKeysMergeMappings) {
  Document merged = parse_yaml_text(
      "base_train: &train {batch_size: 4, grad_accum: 2, max_steps: 10}\n"
      "more: &more {max_steps: 20, seed: 7}\n"
      "model: {path: m}\n"
      "train:\n"
      "  <<: [*train, *more]\n"
      "  grad_accum: 8\n"
      "checkpoint: {<<: {dir: out/x}}\n",
      "c.yaml");
  merged.root.erase("base_train");  // the anchors' own keys are not config keys
  merged.root.erase("more");
  const StageConfig c = read_stage(merged);
  EXPECT_EQ(c.train.batch_size, 4);
  EXPECT_EQ(c.train.grad_accum, 8);  // written beside << wins
  EXPECT_EQ(c.train.max_steps, 10);  // the first mapping of the list wins
  EXPECT_EQ(c.train.seed, 7);
  EXPECT_EQ(c.checkpoint.dir, "out/x");
  // The anchors' own top-level keys are still unknown keys; a merged key's error names the
  // anchor's line.
  EXPECT_NE(error_of([] {
              from_yaml("base: &b {batch_size: 4}\nmodel: {path: m}\n");
            }).find("unknown key 'base'"),
            std::string::npos);
  Document doc =
      parse_yaml_text("x: &b {batch_size: nope}\nmodel: {path: m}\ntrain: {<<: *b}\n", "c.yaml");
  doc.root.erase("x");
  EXPECT_EQ(error_of([&] { read_stage(doc); }),
            "c.yaml:1: train.batch_size: expected an integer, found a string (\"nope\")");
  EXPECT_EQ(error_of([] { from_yaml("model: {path: m}\ntrain: {<<: 3}\n"); }),
            "c.yaml: line 2: a merge key '<<' takes a mapping or a list of mappings (e.g. <<: "
            "*defaults)");
  // A quoted '<<' is an ordinary key.
  EXPECT_NE(error_of([] {
              from_yaml("model: {path: m}\ntrain: {'<<': {seed: 1}}\n");
            }).find("unknown key 'train.<<'"),
            std::string::npos);
}

TEST(StageConfig, MissingFilesNameKeyAndPath) {
  TempDir tmp;
  write_file(tmp / "model/config.json", "{}");
  write_file(tmp / "data/a.jsonl", "");
  const std::string base = tmp.path().string();
  auto check = [&](const std::string& yaml) {
    Document doc = parse_yaml_text(yaml, "c.yaml");
    return error_of([&] { check_inputs_exist(read_stage(doc), doc); });
  };
  EXPECT_EQ(check("model: {path: " + base + "/model}\ndata: {train: [" + base + "/data/*.jsonl]}"),
            "");
  EXPECT_EQ(check("model: {path: " + base + "/nope}"),
            "c.yaml:1: model.path: model directory '" + base + "/nope' does not exist");
  EXPECT_EQ(check("model: {path: " + base + "/data}"),
            "c.yaml:1: model.path: '" + base +
                "/data' has no config.json (not a Hugging Face model directory)");
  EXPECT_EQ(check("model: {path: " + base + "/model}\ndata:\n  train:\n    - " + base +
                  "/data/a.jsonl\n    - " + base + "/data/*.tsv"),
            "c.yaml:5: data.train[1]: no file matches '" + base + "/data/*.tsv'");
  EXPECT_EQ(check("model: {path: " + base + "/model}\ndata: {instructions: " + base + "/i.json}"),
            "c.yaml:2: data.instructions: file '" + base + "/i.json' does not exist");
}

TEST(StageConfig, SyntaxErrorsNameFileLineAndColumn) {
  const std::string json_error = error_of([] { parse_json_text("{\n  \"a\": 1,\n}", "c.json"); });
  EXPECT_NE(json_error.find("c.json: invalid JSON"), std::string::npos) << json_error;
  EXPECT_NE(json_error.find("line 3"), std::string::npos) << json_error;
  const std::string yaml_error = error_of([] { parse_yaml_text("a: [1, 2\nb: 3", "c.yaml"); });
  EXPECT_NE(yaml_error.find("c.yaml:"), std::string::npos) << yaml_error;
  EXPECT_NE(yaml_error.find("invalid YAML"), std::string::npos) << yaml_error;
  EXPECT_EQ(error_of([] { parse_yaml_text("a: 1\na: 2", "c.yaml"); }),
            "c.yaml: line 2: key 'a' appears twice");
}

TEST(StageConfig, LoadStageByExtension) {
  TempDir tmp;
  write_file(tmp / "s.json", kJson);
  write_file(tmp / "s.yml", kYaml);
  write_file(tmp / "s.toml", "");
  EXPECT_EQ(to_json(load_stage(tmp / "s.json")), to_json(load_stage(tmp / "s.yml")));
  EXPECT_NE(error_of([&] { load_stage(tmp / "s.toml"); }).find("unknown extension"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { load_stage(tmp / "none.json"); }),
            "config file not found: " + (tmp / "none.json").string());
  EXPECT_EQ(load_stage(tmp / "s.json", {"train.seed=7"}).train.seed, 7);
}

TEST(StageConfig, ResolvedJsonReadsBackToTheSameConfig) {
  const StageConfig c = from_json(kJson);
  const StageConfig again = from_json(to_json(c).dump());
  EXPECT_EQ(to_json(c), to_json(again));
}

TEST(StageConfig, ReferenceInConfigsReadmeIsCurrent) {
  // configs/README.md embeds `bireco config --schema`; regenerate it when this fails.
  const std::string readme = test::read_file(test::source_dir() / "configs/README.md");
  EXPECT_NE(readme.find(schema_markdown()), std::string::npos)
      << "configs/README.md is out of date; paste the output of `bireco config --schema`";
}

TEST(ShippedConfigs, StageOneMirrorsTheAuthorsRuns) {
  // PAPER.md / the stage-I issue: full fine-tuning, lr 4e-5, warmup 300, linear decay, max
  // length 512, gradient checkpointing, seed 42, a checkpoint at step 2000, and a global batch
  // of 512 (1B, 8B) or 1024 (3B, Qwen2.5-1.5B) over 8 GPUs.
  ::setenv("MODELS", "/models", 0);
  ::setenv("DATA", "/data", 0);
  const std::map<std::string, int64_t> global_batch = {{"llama-3.2-1b.yaml", 512},
                                                       {"llama-3.1-8b.yaml", 512},
                                                       {"llama-3.2-3b.yaml", 1024},
                                                       {"qwen2.5-1.5b.yaml", 1024}};
  for (const auto& [name, batch] : global_batch) {
    const StageConfig c = load_stage(test::source_dir() / "configs/stage1" / name);
    EXPECT_EQ(c.stage, "reconstruction") << name;
    EXPECT_EQ(c.train.batch_size * c.train.grad_accum * 8, batch) << name;
    EXPECT_FALSE(c.model.use_lora) << name;
    EXPECT_DOUBLE_EQ(c.optim.lr, 4.0e-5) << name;
    EXPECT_EQ(c.schedule.name, "linear") << name;
    EXPECT_EQ(c.schedule.warmup_steps, 300) << name;
    EXPECT_EQ(c.text.max_length, 512) << name;
    EXPECT_TRUE(c.model.gradient_checkpointing) << name;
    EXPECT_EQ(c.train.seed, 42) << name;
    EXPECT_EQ(c.checkpoint.every, 2000) << name;
    EXPECT_DOUBLE_EQ(c.objective.reconstruction.d2q_weight, 0.8) << name;
    EXPECT_DOUBLE_EQ(c.objective.reconstruction.q2d_weight, 0.2) << name;
  }
}

TEST(ShippedConfigs, StageTwoConfigsLoad) {
  ::setenv("MODELS", "/models", 0);
  ::setenv("DATA", "/data", 0);
  ::setenv("OUTPUT", "/output", 0);
  for (const char* name : {"llama-3.2-1b.yaml", "llama-3.1-8b.yaml", "llama-3.2-3b.yaml", "qwen2.5-1.5b.yaml"}) {
    const StageConfig c = load_stage(test::source_dir() / "configs/stage2" / name);
    EXPECT_EQ(c.stage, "contrastive") << name;
    EXPECT_TRUE(c.model.use_lora) << name;
  }
}

}  // namespace
}  // namespace bireco::config
