// What a trained embedder is handed over as: a merged Hugging Face model, the PEFT adapter
// (adapter/), the sentence-transformers files and a tokenizer.json that carries the embedding
// template (export_tokenizer.h), so that `SentenceTransformer(dir).encode(...)`, AutoModel with
// last-token pooling and MTEB embed exactly as bireco does with no code of their own
// (tests/train/export_hf_parity.py, tests/eval/mteb_export_parity.py), and bireco_embedding.json
// (bireco's embed / eval read the template and instruction format back as strings).
//
//   DIR/config.json, model.safetensors   LoRA folded into the weights, in the trained dtype
//   DIR/tokenizer.json, tokenizer_config.json (+ tokenizer.model when the model had one)
//   DIR/adapter/adapter_config.json, adapter_model.safetensors   (when trained with LoRA)
//   DIR/modules.json, sentence_bert_config.json, config_sentence_transformers.json
//   DIR/1_Pooling/config.json, DIR/2_Normalize/
//   DIR/bireco_embedding.json, DIR/README.md (load, encode, evaluate: a few lines, nothing by hand)
//   DIR/manifest.json (sizes and XXH64 of every file: marks DIR as an export, checks it)
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "bireco/config/stage_config.h"
#include "bireco/model/transformer.h"

namespace bireco::train {

// A copy of `model` on the CPU with `lora` adapters folded in (merge_lora); the trained model
// is left untouched and torch's generator state is kept. Without adapters: a plain copy.
// Cost: one full copy of the weights in CPU memory while a checkpoint is written.
model::Transformer merged_copy(model::Transformer& model, const config::LoraConfig& lora);

// bireco_embedding.json's content for `config`: how the checkpoint embeds (eval::EncoderSettings
// reads it back, as `bireco eval` and evaluation during training do).
nlohmann::json embedding_settings_json(const config::StageConfig& config);

// The sentence-transformers files, bireco_embedding.json and README.md for a model trained
// with `config` (text.*, model.pooling, data.default_instruction) and hidden size `hidden`, and
// DIR's tokenizer files (as copied from the model) rewritten to carry the template
// (write_embedding_tokenizer). The query prompt is the default instruction in instruction_format.
void write_embedding_files(const std::filesystem::path& dir, const config::StageConfig& config, int64_t hidden);

// `bireco export`: CHECKPOINT (a step-N / final folder of bireco, any HF model folder, or a
// PEFT adapter folder whose adapter_config.json names its base) -> OUT in the layout above.
// The embedding settings come from CHECKPOINT/trainer_state/state.json when present, else
// from CHECKPOINT/bireco_embedding.json, else bireco's defaults. Written to OUT.tmp-<pid> with a
// manifest.json (util/manifest.h) and renamed, so OUT is complete or absent.
// OUT must be new, empty, or an earlier export that nobody added files to (its manifest lists
// every file; it is then replaced); anything else, and an OUT that is, contains or lies inside
// CHECKPOINT (or an adapter's base model), is a bireco::Error before anything is read or written.
// `embedding`, when given (`bireco export --config`), replaces those settings: a base model
// exported with the template it will be trained with is the untrained baseline of that run.
void export_checkpoint(const std::filesystem::path& checkpoint, const std::filesystem::path& out,
                       const config::StageConfig* embedding = nullptr);

}  // namespace bireco::train
