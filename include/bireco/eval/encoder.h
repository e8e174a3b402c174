// eval::Encoder: texts -> embeddings with a trained model (tokenizer + template + model +
// pooling + normalisation), shared by `bireco embed` and `bireco eval`.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bireco/config/stage_config.h"
#include "bireco/model/transformer.h"
#include "bireco/text/tokenizer.h"

namespace bireco::eval {

// How a model embeds. Read from MODEL_DIR/bireco_embedding.json when present, every key
// optional (defaults below = the paper's setup):
//   {"template": "<|start_header_id|>user<|end_header_id|>\n\n{text}<|eot_id|>",
//    "instruction_format": "{instruction}; {text}", "max_length": 512,
//    "add_bos": true, "add_eos": false, "pooling": "last", "normalize": true}
struct EncoderSettings {
  config::TextConfig text;  // template, instruction format, max_length, BOS/EOS
  std::string pooling = "last";
  bool normalize = true;  // L2: dot products are cosine similarities
  int64_t batch_tokens = 16384;  // padded tokens per forward pass (at least one text)
  bool show_progress = true;     // util::Progress on stderr with texts/s
  // The weights' compute dtype: float32, bfloat16, float16, or auto (bfloat16 on CUDA, as MTEB
  // evaluations run; float32 on CPU). Encoder::load replaces auto by what it chose.
  std::string dtype = "auto";
  // Padding-free passes (model/packing.h; the default). false runs padded batches as
  // transformers and sentence-transformers do: the same embeddings to fp32 rounding, the same
  // bits as those libraries (for comparisons that hinge on exact ties).
  bool padding_free = true;

  // Defaults overlaid with DIR/bireco_embedding.json (a bad key is an Error naming it).
  static EncoderSettings from_model_dir(const std::filesystem::path& dir);
  // Defaults overlaid with the keys of `j` (bireco_embedding.json's layout); errors name `where`.
  static EncoderSettings from_json(const nlohmann::json& j, const std::string& where);
  // A stable text identifying what changes embeddings (for cache keys).
  std::string fingerprint() const;
};

class Encoder {
 public:
  // `tokenizer` may be null when only encode_ids() is used.
  Encoder(model::Transformer model, std::shared_ptr<const text::Tokenizer> tokenizer,
          EncoderSettings settings);
  // model::load with init pretrained, in settings.dtype; eval mode.
  static Encoder load(const std::filesystem::path& model_dir, const std::string& device,
                      EncoderSettings settings);

  // Token ids of each text under the template (instruction empty: none).
  std::vector<std::vector<int32_t>> tokenize(const std::vector<std::string>& texts,
                                             const std::string& instruction) const;
  // [N, C] float32 on the CPU, row i for texts[i].
  torch::Tensor encode(const std::vector<std::string>& texts, const std::string& instruction = "");
  // The same from token ids. Texts are sorted by length (longest first) into batches of at
  // most settings.batch_tokens padded tokens, so padding is small; positions come from the
  // mask, so a row does not depend on its batch (up to float rounding of the batch shape).
  torch::Tensor encode_ids(const std::vector<std::vector<int32_t>>& ids);

  const EncoderSettings& settings() const { return settings_; }
  EncoderSettings& settings() { return settings_; }
  model::Transformer& model() { return model_; }
  int64_t dim() const { return model_->config.hidden_size; }
  // Padded tokens and texts of the last encode (for benchmarks).
  int64_t last_tokens() const { return last_tokens_; }

 private:
  model::Transformer model_;
  std::shared_ptr<const text::Tokenizer> tokenizer_;
  EncoderSettings settings_;
  int64_t last_tokens_ = 0;
};

}  // namespace bireco::eval
