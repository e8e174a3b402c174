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
#include "bireco/train/export_tokenizer.h"
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

// README.md of a checkpoint or export: load, encode, evaluate, with nothing to add by hand.
std::string export_readme(const config::StageConfig& config, const EmbeddingTokenizer& tokenizer) {
  const auto& text = config.text;
  const auto quoted = [](const std::string& s) { return nlohmann::json(s).dump(); };
  std::ostringstream out;
  out << "# Text embedder trained with bireco\n\n"
      << "The files carry everything about how a text is embedded: `tokenizer.json` puts the "
         "template "
      << quoted(text.template_) << " around every text (as fixed token ids"
      << (text.add_bos ? ", BOS in front" : "") << (text.add_eos ? ", EOS at the end" : "") << "), "
      << (text.max_length > 0
              ? "truncation to " + std::to_string(text.max_length) + " tokens cuts only the text"
              : std::string("texts are not truncated"))
      << ", queries get the "
      << "instruction as the `query` prompt " << quoted(tokenizer.query_prompt)
      << ", and the embedding is the " << config.model.pooling
      << "-pooled final hidden state, L2-normalised (cosine similarity).\n\n"
      << "```python\nfrom sentence_transformers import SentenceTransformer\n\n"
      << "model = SentenceTransformer(\"THIS_FOLDER\")\n"
      << "docs = model.encode(documents)\n"
      << "queries = model.encode(queries, prompt_name=\"query\")\n"
      << "scores = model.similarity(queries, docs)\n```\n\n"
      << "Another instruction: `prompt=` with it in place of {instruction} in "
      << quoted(text.instruction_format) << " (the part before {text}).\n\n"
      << "## Evaluate with MTEB\n\n"
      << "```python\nimport mteb\nfrom mteb.models import SentenceTransformerEncoderWrapper\n"
      << "from sentence_transformers import SentenceTransformer\n\n"
      << "# the export's prompts: the query one for queries, none for documents\n"
      << "model = SentenceTransformerEncoderWrapper(SentenceTransformer(\"THIS_FOLDER\"))\n"
      << "results = mteb.evaluate(model, mteb.get_tasks(tasks=[\"SciFact\"]))\n```\n\n"
      << "## transformers alone\n\n"
      << "`AutoTokenizer` gives the same ids (padding on the right); take the hidden state of each "
         "row's last "
         "real token (`attention_mask.sum(1) - 1`) from `AutoModel`'s output and L2-normalise "
         "it.\n\n"
      << "## adapter/ (when present)\n\n"
      << "The PEFT LoRA adapter that was merged into these weights, on top of the model it was "
         "trained from. bireco writes it with task type FEATURE_EXTRACTION: load that base with "
         "`AutoModel` (on `AutoModelForCausalLM` PEFT matches no key and only warns), then "
         "`PeftModel.from_pretrained(base, \"THIS_FOLDER/adapter\")`; adapter/README.md says which "
         "class a CAUSAL_LM adapter from PEFT needs.\n\n"
      << "bireco's own `embed` / `eval` read bireco_embedding.json, which records the same "
         "settings.\n";
  return out.str();
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
  return {
      {"_why",
       "bireco's own embed / eval / export read this file. The Hugging Face files say the same: "
       "tokenizer.json's post-processor holds the template's ids (BOS, head, tail, EOS), "
       "config_sentence_transformers.json the query prompt with the default instruction, "
       "sentence_bert_config.json max_length, 1_Pooling the pooling; what only this file has is "
       "the "
       "template and instruction_format as strings (a prompt holds one instruction filled in)"},
      {"template", text.template_},
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
  const std::string& instruction = config.data.default_instruction;
  const EmbeddingTokenizer tokenizer = write_embedding_tokenizer(dir, text, instruction);
  fs::create_directories(dir / "1_Pooling");
  fs::create_directories(dir / "2_Normalize");  // Normalize has no parameters or config
  write_json(dir / "modules.json",
             nlohmann::json::array({{{"idx", 0}, {"name", "0"}, {"path", ""}, {"type", "sentence_transformers.models.Transformer"}},
                                    {{"idx", 1}, {"name", "1"}, {"path", "1_Pooling"}, {"type", "sentence_transformers.models.Pooling"}},
                                    {{"idx", 2}, {"name", "2"}, {"path", "2_Normalize"}, {"type", "sentence_transformers.models.Normalize"}}}));
  // One length for queries and documents, as bireco's embed / eval (bireco_embedding.json's
  // max_length); text.query_max_length / document_max_length shape training batches only.
  // max_length <= 0 (no truncation): none here either (sentence-transformers then caps texts at
  // the model's max_position_embeddings).
  write_json(
      dir / "sentence_bert_config.json",
      {{"max_seq_length", text.max_length > 0 ? nlohmann::json(text.max_length) : nlohmann::json()},
       {"do_lower_case", false}});
  write_json(dir / "1_Pooling" / "config.json", pooling_config(config.model.pooling, hidden));
  // The template is in tokenizer.json; a query's instruction is the "query" prompt.
  write_json(dir / "config_sentence_transformers.json",
             {{"prompts", {{"query", tokenizer.query_prompt}, {"document", ""}}},
              {"default_prompt_name", nullptr},
              {"similarity_fn_name", "cosine"}});
  if (!tokenizer.query_suffix.empty())
    log::warn("text.instruction_format puts ", nlohmann::json(tokenizer.query_suffix).dump(),
              " after the query, which a sentence-transformers prompt cannot: encode queries with "
              "bireco, or append it to each query yourself");
  write_json(dir / "bireco_embedding.json", embedding_settings_json(config));
  util::write_file_durably(dir / "README.md", export_readme(config, tokenizer));
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
  save.copy_files_from = tokenizer_dir;  // write_embedding_files rewrites them
  auto merged = merged_copy(loaded, lora);
  // OUT.tmp-<pid> (a name nobody else uses: nothing of the user's is removed), renamed to OUT
  // once every file is written and fsynced (util/durable_file.h).
  const fs::path target = fs::absolute(out);
  const fs::path temp = target.string() + ".tmp-" + std::to_string(::getpid());
  try {
    model::save_pretrained(merged, temp, save);
    if (!adapter_dir.empty()) {
      fs::create_directories(temp / "adapter");
      util::copy_file_durably(adapter_dir / "adapter_model.safetensors",
                              temp / "adapter" / "adapter_model.safetensors");
      // A path on the training machine means nothing where the export is used (and PEFT reads it
      // only in AutoPeftModel): a hub name is kept, a local folder becomes null.
      auto adapter_config = read_json(adapter_dir / "adapter_config.json");
      const auto base = adapter_config.value("base_model_name_or_path", nlohmann::json());
      if (base.is_string() &&
          (fs::path(base.get<std::string>()).is_absolute() || fs::exists(base.get<std::string>())))
        adapter_config["base_model_name_or_path"] = nullptr;
      write_json(temp / "adapter" / "adapter_config.json", adapter_config);
      // FEATURE_EXTRACTION keys (base_model.model.layers...) match AutoModel's; on
      // AutoModelForCausalLM PEFT matches none and only warns of missing adapter keys.
      util::write_file_durably(
          temp / "adapter" / "README.md",
          "# LoRA adapter (PEFT)\n\nMerged into the weights one folder up. Task type " +
              adapter_config.value("task_type", std::string("FEATURE_EXTRACTION")) +
              ": load the base it was trained on with `AutoModel` and then\n"
              "`PeftModel.from_pretrained(base, \"THIS_FOLDER\")`"
              " (`AutoModelForCausalLM` for CAUSAL_LM adapters; the other class matches no "
              "key).\n");
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
