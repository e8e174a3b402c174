// Model folders are input, never code: pickle weights are refused with the conversion
// command, and a shard index cannot point the loader outside the folder.
#include <filesystem>

#include "bireco/model/load.h"
#include "bireco/model/lora.h"
#include "test_support.h"

namespace bireco::model {
namespace {
namespace fs = std::filesystem;

// A model folder with the demo's tiny config and the given extra files.
fs::path model_dir(const fs::path& root, const std::map<std::string, std::string>& files) {
  const fs::path dir = root / "model";
  fs::create_directories(dir);
  fs::copy_file(test::source_dir() / "configs/demo/tiny-llama/config.json", dir / "config.json");
  for (const auto& [name, text] : files) test::write_file(dir / name, text);
  return dir;
}

std::string load_error(const fs::path& dir) {
  config::ModelConfig o;
  o.path = dir.string();
  o.device = "cpu";
  return test::error_of([&] { load(o, 0); });
}

TEST(UntrustedModelInput, PickleOnlyFolderIsRefusedWithTheConversionCommand) {
  test::TempDir tmp;
  const fs::path dir =
      model_dir(tmp.path(), {{"pytorch_model.bin", "\x80\x02}q\x00."}, {"training_args.pt", "x"}});
  const std::string message = load_error(dir);
  EXPECT_NE(message.find("pytorch_model.bin"), std::string::npos) << message;
  EXPECT_NE(message.find("training_args.pt"), std::string::npos) << message;
  EXPECT_NE(message.find("refuses pickle"), std::string::npos) << message;
  EXPECT_NE(message.find("save_pretrained(d, safe_serialization=True)"), std::string::npos)
      << message;
}

TEST(UntrustedModelInput, ShardIndexEscapingTheFolderIsRefusedNamingIndexAndKey) {
  for (const std::string shard :
       {"../outside.safetensors", "/etc/model.safetensors", "sub/../../x.safetensors"}) {
    test::TempDir tmp;
    test::write_file(tmp / "outside.safetensors", "not read");
    const fs::path dir = model_dir(
        tmp.path(), {{"model.safetensors.index.json",
                      R"({"weight_map": {"model.embed_tokens.weight": ")" + shard + R"("}})"}});
    const std::string message = load_error(dir);
    EXPECT_EQ(message, (dir / "model.safetensors.index.json").string() +
                           ": /weight_map/model.embed_tokens.weight = '" + shard +
                           "' points outside the model folder (refused)");
  }
}

TEST(UntrustedModelInput, ShardIndexNamingAPickleFileIsRefused) {
  test::TempDir tmp;
  const fs::path dir =
      model_dir(tmp.path(), {{"model.safetensors.index.json",
                              R"({"weight_map": {"lm_head.weight": "pytorch_model-00001.bin"}})"},
                             {"pytorch_model-00001.bin", "x"}});
  EXPECT_NE(
      load_error(dir).find(
          "/weight_map/lm_head.weight = 'pytorch_model-00001.bin' is not a .safetensors file"),
      std::string::npos);
}

TEST(UntrustedModelInput, PickleAdapterIsRefused) {
  test::TempDir tmp;
  test::write_file(
      tmp / "adapter/adapter_config.json",
      R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]})");
  test::write_file(tmp / "adapter/adapter_model.bin", "x");
  config::ModelConfig o;
  o.path = (test::source_dir() / "configs/demo/tiny-llama").string();
  o.init = "random";
  o.device = "cpu";
  Transformer m = load(o, 0);
  EXPECT_EQ(
      test::error_of([&] {
        load_adapter(m, tmp / "adapter");
      }).rfind((tmp / "adapter/adapter_model.bin").string() + ": pickle weights are refused", 0),
      0u);
}

TEST(UntrustedModelInput, MistypedAdapterConfigNamesTheKey) {
  test::TempDir tmp;
  config::ModelConfig o;
  o.path = (test::source_dir() / "configs/demo/tiny-llama").string();
  o.init = "random";
  o.device = "cpu";
  Transformer m = load(o, 0);
  const struct {
    const char* config;
    const char* message;
  } cases[] = {
      {R"({"peft_type": 7})", "`peft_type` must be a string"},
      {R"({"peft_type": "IA3"})", "`peft_type` is not LORA"},
      {R"({"peft_type": "LORA", "use_dora": "yes"})", "`use_dora` must be true or false"},
      {R"({"peft_type": "LORA", "r": "8"})", "`r` must be an integer"},
      {R"({"peft_type": "LORA", "r": 0})", "`r` must be a positive integer"},
      {R"({"peft_type": "LORA", "r": 2})", "`lora_alpha` is required"},
      {R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "lora_dropout": 1.5})",
       "`lora_dropout` must be in [0, 1)"},
      // PEFT also takes a regex string here; bireco needs the explicit list.
      {R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": "q_proj|v_proj"})",
       "`target_modules` must be a list of module names"},
      {R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj", 3]})",
       "`target_modules` must be a list of module names"},
  };
  for (const auto& c : cases) {
    test::write_file(tmp / "adapter/adapter_config.json", c.config);
    EXPECT_EQ(test::error_of([&] { load_adapter(m, tmp / "adapter"); }),
              (tmp / "adapter/adapter_config.json").string() + ": " + c.message)
        << c.config;
  }
}

}  // namespace
}  // namespace bireco::model
