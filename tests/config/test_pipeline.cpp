// Pipeline files: stages resolve in order, `@stage` names an earlier stage's output, and
// overrides reach every stage or a named one; stage output folders differ; `--resume FOLDER`
// reaches one stage.
#include <gtest/gtest.h>

#include "bireco/config/pipeline.h"
#include "bireco/util/error.h"
#include "test_support.h"

namespace bireco::config {
namespace {
using ::bireco::test::error_of;
using test::TempDir;
using test::write_file;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(tmp_ / "s1.yaml", "stage: reconstruction\nmodel: {path: base}\n"
                                 "checkpoint: {dir: out/s1}\n");
    write_file(tmp_ / "s2.json", R"({"stage": "contrastive", "model": {"path": "x"},
                                     "checkpoint": {"dir": "out/s2"}})");
  }
  std::filesystem::path pipeline(const std::string& yaml) {
    write_file(tmp_ / "p.yaml", yaml);
    return tmp_ / "p.yaml";
  }
  TempDir tmp_;
};

TEST_F(PipelineTest, LaterStageStartsFromEarlierOutput) {
  const Plan plan = load_plan(pipeline(
      "pipeline:\n"
      "  - {name: stage1, config: s1.yaml}\n"
      "  - {name: stage2, config: s2.json, set: {model.path: '@stage1/step-2000'}}\n"
      "  - {name: again, config: s2.json, set: {model.path: '@stage2', checkpoint.dir: o3}}\n"));
  ASSERT_TRUE(plan.is_pipeline);
  ASSERT_EQ(plan.stages.size(), 3u);
  EXPECT_EQ(plan.stages[0].name, "stage1");
  EXPECT_EQ(plan.stages[0].config.model.path, "base");
  EXPECT_EQ(plan.stages[0].model_from, "");
  EXPECT_EQ(plan.stages[1].config.stage, "contrastive");
  EXPECT_EQ(plan.stages[1].config.model.path, "out/s1/step-2000");
  EXPECT_EQ(plan.stages[1].model_from, "stage1");
  EXPECT_EQ(plan.stages[2].config.model.path, "out/s2/final");
  EXPECT_EQ(plan.stages[2].config.checkpoint.dir, "o3");
}

TEST_F(PipelineTest, SingleStageFileIsAPlanOfOne) {
  const Plan plan = load_plan(tmp_ / "s1.yaml", {"train.max_steps=3"});
  EXPECT_FALSE(plan.is_pipeline);
  ASSERT_EQ(plan.stages.size(), 1u);
  EXPECT_EQ(plan.stages[0].name, "s1");
  EXPECT_EQ(plan.stages[0].config.train.max_steps, 3);
}

TEST_F(PipelineTest, OverridesReachAllOrNamedStages) {
  const Plan plan = load_plan(
      pipeline("pipeline:\n  - {name: a, config: s1.yaml}\n  - {name: b, config: s2.json}\n"),
      {"train.seed=5", "b:train.seed=6", "a:optim.lr=0.5"});
  EXPECT_EQ(plan.stages[0].config.train.seed, 5);
  EXPECT_EQ(plan.stages[1].config.train.seed, 6);
  EXPECT_DOUBLE_EQ(plan.stages[0].config.optim.lr, 0.5);
  EXPECT_DOUBLE_EQ(plan.stages[1].config.optim.lr, 4e-5);
  EXPECT_EQ(error_of([&] { load_plan(tmp_ / "p.yaml", {"c:train.seed=1"}); }),
            "--set c:train.seed=1: no stage named 'c' (stages: a, b)");
}

TEST_F(PipelineTest, ReferenceToLaterOrUnknownStageIsAnError) {
  EXPECT_EQ(error_of([&] {
              load_plan(pipeline("pipeline:\n  - {name: a, config: s1.yaml, set: {model.path: "
                                 "'@b'}}\n  - {name: b, config: s2.json}\n"));
            }),
            "pipeline[0].set: model.path: '@b' names a stage that runs after 'a'");
  EXPECT_EQ(error_of([&] {
              load_plan(pipeline("pipeline:\n  - {name: stage1, config: s1.yaml}\n  - {name: b, "
                                 "config: s2.json, set: {model.path: '@stage2'}}\n"));
            }),
            "pipeline[1].set: model.path: '@stage2' names no earlier stage; did you mean "
            "'@stage1'?");
}

TEST_F(PipelineTest, ReferenceOutsidePipelineIsAnError) {
  write_file(tmp_ / "ref.yaml", "model: {path: '@stage1'}\n");
  const std::string e = error_of([&] { load_plan(tmp_ / "ref.yaml"); });
  EXPECT_NE(e.find("ref.yaml:1: model.path: '@stage1' refers to a pipeline stage"),
            std::string::npos)
      << e;
}

TEST_F(PipelineTest, MalformedEntriesNameTheirPath) {
  EXPECT_EQ(error_of([&] { load_plan(pipeline("pipeline:\n  - {name: a, conf: s1.yaml}\n")); }),
            (tmp_ / "p.yaml").string() +
                ":2: unknown key 'pipeline[0].conf'; did you mean 'pipeline[0].config'? (a stage "
                "entry has name, config, set)");
  EXPECT_EQ(error_of([&] { load_plan(pipeline("pipeline:\n  - {name: a, config: none.yaml}\n")); }),
            (tmp_ / "p.yaml").string() + ":2: pipeline[0].config: file '" +
                (tmp_ / "none.yaml").string() + "' does not exist");
  EXPECT_NE(error_of([&] {
              load_plan(pipeline("pipeline:\n  - {name: a, config: s1.yaml}\n  - {name: a, "
                                 "config: s1.yaml}\n"));
            }).find("pipeline[1].name: stage 'a' appears twice"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_plan(pipeline("pipeline: []\n")); })
                .find("pipeline: expected a non-empty list of stages"),
            std::string::npos);
  // An error inside a stage names the stage's own file and line.
  write_file(tmp_ / "bad.yaml", "model: {path: m}\ntrain: {max_step: 3}\n");
  EXPECT_EQ(error_of([&] { load_plan(pipeline("pipeline:\n  - {name: a, config: bad.yaml}\n")); }),
            (tmp_ / "bad.yaml").string() +
                ":2: unknown key 'train.max_step'; did you mean 'train.max_steps'?");
}

// An unscoped `--set checkpoint.dir=D` reached every stage, and stage I then wrote over the
// pretrain stage's D/final. Folders that differ only in spelling are the same folder.
TEST_F(PipelineTest, StagesWithOneOutputFolderAreAnErrorNamingThem) {
  const std::string two =
      "pipeline:\n  - {name: a, config: s1.yaml}\n  - {name: b, config: s2.json}\n";
  const std::string e =
      error_of([&] { load_plan(pipeline(two), {"checkpoint.dir=" + (tmp_ / "D").string()}); });
  EXPECT_NE(
      e.find("checkpoint.dir: stages 'a' and 'b' both write under '" + (tmp_ / "D").string() +
             "'; each stage needs its own folder (`--set checkpoint.dir=" + (tmp_ / "D").string() +
             "` applies to every stage: scope it, e.g. --set b:checkpoint.dir=...)"),
      std::string::npos)
      << e;
  const std::string spelled = error_of([&] {
    load_plan(
        pipeline("pipeline:\n  - {name: a, config: s1.yaml}\n"
                 "  - {name: b, config: s2.json, set: {checkpoint.dir: out/x/../s1/}}\n"));
  });
  EXPECT_NE(spelled.find("stages 'a' and 'b' both write under 'out/x/../s1/'"), std::string::npos)
      << spelled;
  // Scoped, they differ: fine.
  const Plan plan = load_plan(pipeline(two), {"a:checkpoint.dir=" + (tmp_ / "A").string(),
                                              "b:checkpoint.dir=" + (tmp_ / "B").string()});
  EXPECT_EQ(plan.stages[1].config.checkpoint.dir, (tmp_ / "B").string());
}

// `--resume FOLDER` was handed to every stage (stage 1 then resumed from stage 2's checkpoint).
TEST_F(PipelineTest, ResumeFolderAppliesToTheStageWhoseOutputHoldsIt) {
  const Plan plan =
      load_plan(pipeline("pipeline:\n  - {name: a, config: s1.yaml}\n"
                         "  - {name: b, config: s2.json}\n"
                         "  - {name: c, config: s2.json, set: {checkpoint.dir: out/s2/c}}\n"));
  std::string note;
  EXPECT_EQ(resume_per_stage(plan, "out/s2/step-40", &note),
            (std::vector<std::string>{"auto", "out/s2/step-40", "none"}));
  EXPECT_EQ(note,
            "--resume out/s2/step-40 applies to stage 'b' (its checkpoint.dir holds the folder); "
            "the stages "
            "before it continue from their own newest checkpoint (--resume auto); the stages after "
            "it start "
            "fresh");
  // The deepest checkpoint.dir wins (c's lies inside b's).
  EXPECT_EQ(resume_per_stage(plan, "out/s2/c/step-2"),
            (std::vector<std::string>{"auto", "auto", "out/s2/c/step-2"}));
  EXPECT_EQ(resume_per_stage(plan, "a:/elsewhere/step-3"),
            (std::vector<std::string>{"/elsewhere/step-3", "none", "none"}));
  EXPECT_EQ(resume_per_stage(plan, "auto"), (std::vector<std::string>{"auto", "auto", "auto"}));
  EXPECT_EQ(resume_per_stage(plan, "none"), (std::vector<std::string>{"none", "none", "none"}));
  const std::string e = error_of([&] { resume_per_stage(plan, "/elsewhere/step-3"); });
  EXPECT_NE(
      e.find("--resume /elsewhere/step-3: the folder is under no stage's checkpoint.dir (a: "),
      std::string::npos)
      << e;
  EXPECT_NE(e.find("name the stage: --resume STAGE:/elsewhere/step-3"), std::string::npos) << e;
  // A single stage takes the folder wherever it is.
  EXPECT_EQ(resume_per_stage(load_plan(tmp_ / "s1.yaml"), "/elsewhere/step-3"),
            (std::vector<std::string>{"/elsewhere/step-3"}));
}

}  // namespace
}  // namespace bireco::config
