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

}  // namespace
}  // namespace bireco::model
