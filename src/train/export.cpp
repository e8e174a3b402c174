#include "bireco/train/export.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bireco/config/document.h"
#include "bireco/config/load.h"
#include "bireco/model/hf_io.h"
#include "bireco/model/load.h"
#include "bireco/model/lora.h"
#include "bireco/model/model_config.h"
#include "bireco/model/rng_state.h"
#include "bireco/util/durable_file.h"
#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"
#include "bireco/util/log.h"
#include "bireco/util/manifest.h"
#include "bireco/util/strings.h"

namespace bireco::train {
namespace fs = std::filesystem;
namespace {

void write_json(const fs::path& file, const nlohmann::json& json) {
  util::write_file_durably(file, json.dump(2) + "\n");
}

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw Error(file.string() + ": cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(file.string() + ": invalid JSON: " + util::json_error_text(e));
  }
}

bool has_lora(model::Transformer& model) {
  for (const auto& item : model->named_parameters())
    if (item.key().find(".lora_") != std::string::npos) return true;
  return false;
}

// The template's text before and after `{text}` (sentence-transformers can only prefix).
std::pair<std::string, std::string> template_parts(const std::string& tmpl) {
  const auto at = tmpl.find("{text}");
  if (at == std::string::npos) return {tmpl, ""};
  return {tmpl.substr(0, at), tmpl.substr(at + 6)};
}

std::string instruction_prefix(const std::string& format, const std::string& instruction) {
  std::string out = format.substr(0, std::min(format.size(), format.find("{text}")));
  const auto at = out.find("{instruction}");
  if (at != std::string::npos) out.replace(at, 13, instruction);
  return out;
}

// The sentence-transformers pooling flags for bireco's model.pooling.
nlohmann::json pooling_config(const std::string& pooling, int64_t hidden) {
  if (pooling != "last" && pooling != "mean" && pooling != "weighted_mean")
    throw Error("model.pooling: '" + pooling + "' has no sentence-transformers equivalent");
  return {{"word_embedding_dimension", hidden},
          {"pooling_mode_cls_token", false},
          {"pooling_mode_mean_tokens", pooling == "mean"},
          {"pooling_mode_max_tokens", false},
          {"pooling_mode_mean_sqrt_len_tokens", false},
          {"pooling_mode_weightedmean_tokens", pooling == "weighted_mean"},
          {"pooling_mode_lasttoken", pooling == "last"},
          {"include_prompt", true}};
}

// The settings an export records: from a bireco checkpoint's trainer state, an earlier
// export's bireco_embedding.json, or the defaults.
config::StageConfig embedding_settings(const fs::path& checkpoint) {
  const fs::path state = checkpoint / "trainer_state" / "state.json";
  if (fs::is_regular_file(state)) {
    config::Document doc;
    doc.root = read_json(state).at("config");
    doc.file = state;
    return config::read_stage(doc);
  }
  config::StageConfig c;
  const fs::path saved = checkpoint / "bireco_embedding.json";
  if (fs::is_regular_file(saved)) {
    const auto j = read_json(saved);
    c.text.template_ = j.value("template", c.text.template_);
    c.text.instruction_format = j.value("instruction_format", c.text.instruction_format);
    c.text.add_bos = j.value("add_bos", c.text.add_bos);
    c.text.add_eos = j.value("add_eos", c.text.add_eos);
    c.text.max_length = j.value("max_length", c.text.max_length);
    c.model.pooling = j.value("pooling", c.model.pooling);
    c.data.default_instruction = j.value("_default_instruction", std::string());
  }
  return c;
}

// `inner` is `outer` or lies under it.
bool is_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // a trailing separator
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

// A folder an earlier `bireco export` wrote and nobody added to: its manifest.json lists
// bireco_embedding.json and no trainer state, and lists every file in it. "" when it is one,
// else why not.
std::string not_an_export(const fs::path& dir) {
  util::Manifest manifest;
  try {
    manifest = util::read_manifest(dir);
  } catch (const std::exception&) {
    return "no bireco export manifest.json";
  }
  if (!manifest.count("bireco_embedding.json") || manifest.count("trainer_state/state.json"))
    return "its manifest.json is not an export's";
  std::vector<std::string> extra;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_directory() && !entry.is_symlink()) continue;
    const std::string rel = fs::relative(entry.path(), dir).generic_string();
    if (rel != util::kManifestFile && (!manifest.count(rel) || entry.is_symlink()))
      extra.push_back(rel);
  }
  if (extra.empty()) return "";
  std::sort(extra.begin(), extra.end());
  if (extra.size() > 5) extra.resize(5), extra.push_back("...");
  return "it holds files the export did not write: " + util::join(extra, ", ");
}

// `bireco export` writes only into a new or empty folder, or over an earlier export (through the
// temporary folder and rename); never into, around or over what it reads from.
void check_export_target(const fs::path& out, const std::vector<fs::path>& sources) {
  const fs::path target = util::comparable_path(out);
  for (const auto& source : sources) {
    const fs::path from = util::comparable_path(source);
    if (is_within(from, target))
      throw Error("export: --out '" + out.string() + "' " + (from == target ? "is" : "contains") +
                  " '" + source.string() + "', which the export reads; choose another folder");
    if (is_within(target, from))
      throw Error("export: --out '" + out.string() + "' lies inside '" + source.string() +
                  "', which the export reads; choose a folder outside it");
  }
  std::error_code ec;
  if (!fs::exists(target, ec)) return;
  if (!fs::is_directory(target))
    throw Error("export: --out '" + out.string() +
                "' exists and is not a folder; choose another path");
  if (fs::is_empty(target)) return;
  const std::string why = not_an_export(target);
  if (!why.empty())
    throw Error(
        "export: --out '" + out.string() + "' is not empty and not a previous bireco export (" +
        why +
        "); it would be replaced as a whole: choose a new or empty folder, or remove it yourself");
  log::info("export: replacing the previous export in ", out.string());
}

}  // namespace

model::Transformer merged_copy(model::Transformer& source, const config::LoraConfig& lora) {
  // apply_lora seeds torch (the CPU generator and the GPU's): keep the training streams as they
  // were, on the GPU too, or a run that saves would draw other dropout masks after the save
  // than the run resumed from it.
  const auto rng = model::RngState::capture(source->embed->weight.device());
  model::Transformer copy(source->config);
  copy->to(torch::kCPU, source->embed->weight.scalar_type());
  if (has_lora(source)) model::apply_lora(copy, lora, 0);
  {
    torch::NoGradGuard no_grad;
    auto params = source->named_parameters();
    for (auto& item : copy->named_parameters()) {
      const auto& from = params[item.key()];
      // Adapters keep their own dtype (fp32 under bf16-mixed), so that the merge adds
      // B A alpha / r computed in it and rounds once into the base's dtype, as PEFT's
      // merge_and_unload does.
      if (item.key().find(".lora_") != std::string::npos)
        item.value().set_data(from.to(torch::kCPU).clone());
      else
        item.value().copy_(from.to(torch::kCPU));
    }
  }
  model::merge_lora(copy);
  copy->eval();
  rng.restore();
  return copy;
}

nlohmann::json embedding_settings_json(const config::StageConfig& config) {
  // The keys eval::EncoderSettings reads; `_`-prefixed keys are notes it skips.
  const auto& text = config.text;
  return {{"template", text.template_},
          {"instruction_format", text.instruction_format},
          {"_default_instruction", config.data.default_instruction},
          {"pooling", config.model.pooling},
          {"normalize", true},
          {"add_bos", text.add_bos},
          {"add_eos", text.add_eos},
          {"max_length", text.max_length}};
}

void write_embedding_files(const fs::path& dir, const config::StageConfig& config, int64_t hidden) {
  const auto& text = config.text;
  const auto [before, after] = template_parts(text.template_);
  const std::string instruction =
      config.data.default_instruction.empty() ? "Given a query, retrieve relevant documents" : config.data.default_instruction;
  fs::create_directories(dir / "1_Pooling");
  fs::create_directories(dir / "2_Normalize");  // Normalize has no parameters or config
  write_json(dir / "modules.json",
             nlohmann::json::array({{{"idx", 0}, {"name", "0"}, {"path", ""}, {"type", "sentence_transformers.models.Transformer"}},
                                    {{"idx", 1}, {"name", "1"}, {"path", "1_Pooling"}, {"type", "sentence_transformers.models.Pooling"}},
                                    {{"idx", 2}, {"name", "2"}, {"path", "2_Normalize"}, {"type", "sentence_transformers.models.Normalize"}}}));
  write_json(dir / "sentence_bert_config.json", {{"max_seq_length", text.max_length}, {"do_lower_case", false}});
  write_json(dir / "1_Pooling" / "config.json", pooling_config(config.model.pooling, hidden));
  // Prompts are plain prefixes: the template's head (and the query's instruction). The
  // template's tail (e.g. <|eot_id|>) cannot be expressed: README.md says what to append.
  write_json(dir / "config_sentence_transformers.json",
             {{"prompts", {{"query", before + instruction_prefix(text.instruction_format, instruction)}, {"document", before}}},
              {"default_prompt_name", nullptr},
              {"similarity_fn_name", "cosine"}});
  write_json(dir / "bireco_embedding.json", embedding_settings_json(config));
  std::ostringstream readme;
  readme << "# Text embedder trained with bireco\n\n"
         << "Embedding: " << config.model.pooling << " pooling of the final hidden state, L2-normalised, cosine similarity.\n"
         << "Every text is wrapped as `" << nlohmann::json(text.template_).dump() << "` (JSON-escaped), with the\n"
         << "tokenizer's BOS " << (text.add_bos ? "in front" : "omitted") << (text.add_eos ? " and its EOS appended" : "")
         << "; queries put their instruction in as `" << nlohmann::json(text.instruction_format).dump() << "`.\n\n"
         << "sentence-transformers applies prompts as plain prefixes, so to reproduce that exactly:\n\n"
         << "```python\nfrom sentence_transformers import SentenceTransformer\nm = SentenceTransformer(DIR)\n"
         << "tail = " << nlohmann::json(after).dump() << "  # the template's text after {text}\n"
         << "q = m.encode([t + tail for t in queries], prompt=" << nlohmann::json(before).dump() << " + INSTRUCTION + "
         << nlohmann::json(instruction_prefix(text.instruction_format, "") ).dump() << ")\n"
         << "d = m.encode([t + tail for t in documents], prompt_name=\"document\")\n```\n\n"
         << "The stored `query` prompt carries the instruction `" << instruction << "`; replace it per task.\n"
         << (text.add_eos ? "bireco also appends the EOS token: add `tokenizer.eos_token` to `tail`.\n" : "")
         << "Text longer than max_length is truncated by bireco before the template's tail, by sentence-transformers"
            " after it.\nbireco's own `embed` / `eval` read bireco_embedding.json and need none of this.\n"
         << "adapter/ (when present) is the PEFT LoRA adapter on top of the stage-I base model.\n";
  util::write_file_durably(dir / "README.md", readme.str());
}

void export_checkpoint(const fs::path& checkpoint, const fs::path& out,
                       const config::StageConfig* embedding) {
  std::vector<fs::path> sources = {checkpoint};
  if (fs::is_regular_file(checkpoint / "adapter_config.json")) {
    const auto base = read_json(checkpoint / "adapter_config.json")
                          .value("base_model_name_or_path", std::string());
    if (!base.empty()) sources.push_back(base);
  }
  check_export_target(out, sources);
  config::ModelConfig options;
  options.device = "cpu";
  config::StageConfig settings;
  model::Transformer loaded{nullptr};
  config::LoraConfig lora;
  fs::path adapter_dir, tokenizer_dir = checkpoint;
  if (fs::is_regular_file(checkpoint / "adapter_config.json")) {
    // A bare PEFT adapter: its base model, the adapter loaded on top, then merged.
    const auto base = read_json(checkpoint / "adapter_config.json").value("base_model_name_or_path", std::string());
    if (base.empty() || !fs::is_regular_file(fs::path(base) / "config.json"))
      throw Error((checkpoint / "adapter_config.json").string() + ": base_model_name_or_path '" + base +
                  "' is not a model folder");
    options.path = base;
    options.dtype =
        model::stored_dtype(base);  // the base stays as stored, the adapter merges into it
    loaded = model::load(options, 0);
    lora = model::load_adapter(loaded, checkpoint);
    adapter_dir = checkpoint;
    tokenizer_dir = base;
    settings = embedding_settings(base);
  } else {
    // A bireco checkpoint or HF folder: its weights are already merged; adapter/ is copied.
    options.path = checkpoint.string();
    options.dtype = model::stored_dtype(checkpoint);  // as trained: a bf16 model is not upcast
    loaded = model::load(options, 0);
    if (fs::is_regular_file(checkpoint / "adapter" / "adapter_config.json")) adapter_dir = checkpoint / "adapter";
    settings = embedding_settings(checkpoint);
  }
  if (embedding != nullptr) settings = *embedding;
  model::SaveOptions save;
  save.copy_files_from = tokenizer_dir;
  auto merged = merged_copy(loaded, lora);
  // OUT.tmp-<pid> (a name nobody else uses: nothing of the user's is removed), renamed to OUT
  // once every file is written and fsynced (util/durable_file.h).
  const fs::path target = fs::absolute(out);
  const fs::path temp = target.string() + ".tmp-" + std::to_string(::getpid());
  try {
    model::save_pretrained(merged, temp, save);
    if (!adapter_dir.empty()) {
      fs::create_directories(temp / "adapter");
      for (const char* file : {"adapter_config.json", "adapter_model.safetensors"})
        util::copy_file_durably(adapter_dir / file, temp / "adapter" / file);
    }
    write_embedding_files(temp, settings, loaded->config.hidden_size);
    util::write_manifest(temp);  // marks the folder as an export that a later export may replace
    util::install_directory(temp, target);
  } catch (...) {
    util::remove_quietly(temp);
    throw;
  }
}

}  // namespace bireco::train
