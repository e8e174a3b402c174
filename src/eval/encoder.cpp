// Embedding texts: template, length-sorted batches under a token budget, pooling.
#include "bireco/eval/encoder.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "bireco/model/load.h"
#include "bireco/model/pooling.h"
#include "bireco/text/embedding_template.h"
#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"
#include "bireco/util/progress.h"

namespace bireco::eval {

EncoderSettings EncoderSettings::from_model_dir(const std::filesystem::path& dir) {
  const auto file = dir / "bireco_embedding.json";
  if (!std::filesystem::exists(file)) return EncoderSettings();
  std::ifstream in(file);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(file.string() + ": invalid JSON: " + util::json_error_text(e));
  }
  return from_json(j, file.string());
}

EncoderSettings EncoderSettings::from_json(const nlohmann::json& j, const std::string& where_from) {
  EncoderSettings s;
  if (!j.is_object()) throw Error(where_from + ": expected a JSON object");
  for (const auto& [key, value] : j.items()) {
    const std::string where = where_from + ": key `" + key + "`";
    try {
      if (key == "template") s.text.template_ = value.get<std::string>();
      else if (key == "instruction_format") s.text.instruction_format = value.get<std::string>();
      else if (key == "max_length") s.text.max_length = value.get<int64_t>();
      else if (key == "add_bos") s.text.add_bos = value.get<bool>();
      else if (key == "add_eos") s.text.add_eos = value.get<bool>();
      else if (key == "pooling") s.pooling = value.get<std::string>();
      else if (key == "normalize") s.normalize = value.get<bool>();
      else if (key.rfind('_', 0) != 0) throw Error(where + " is not a setting (template, instruction_format, max_length, add_bos, add_eos, pooling, normalize)");
    } catch (const nlohmann::json::type_error&) {
      throw Error(where + " has the wrong type (" + value.type_name() + ")");
    }
  }
  return s;
}

std::string EncoderSettings::fingerprint() const {
  nlohmann::json j = {{"template", text.template_},     {"instruction_format", text.instruction_format},
                      {"max_length", text.max_length},  {"add_bos", text.add_bos},
                      {"add_eos", text.add_eos},        {"pooling", pooling},
                      {"normalize", normalize},         {"dtype", dtype},
                      {"padding_free", padding_free}};
  return j.dump();
}

Encoder::Encoder(model::Transformer model, std::shared_ptr<const text::Tokenizer> tokenizer,
                 EncoderSettings settings)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), settings_(std::move(settings)) {
  model_->eval();
  model_->padding_free = settings_.padding_free;
}

Encoder Encoder::load(const std::filesystem::path& model_dir, const std::string& device,
                      EncoderSettings settings) {
  config::ModelConfig mc;
  mc.path = model_dir.string();
  mc.device = device;
  // bf16 on GPU as MTEB evaluations run (PAPER.md, Evaluation), and on CPUs with native bf16
  // matmuls; float32 on other CPUs, which only emulate bf16 (model::native_bf16).
  if (settings.dtype == "auto")
    settings.dtype = model::native_bf16(model::parse_device(device)) ? "bfloat16" : "float32";
  model::parse_dtype(settings.dtype, "--dtype");
  mc.dtype = settings.dtype;
  const auto tokenizer_path = settings.text.tokenizer.empty() ? model_dir : std::filesystem::path(settings.text.tokenizer);
  std::shared_ptr<const text::Tokenizer> tokenizer = text::Tokenizer::load(tokenizer_path);
  return Encoder(model::load(mc, 0), std::move(tokenizer), std::move(settings));
}

std::vector<std::vector<int32_t>> Encoder::tokenize(const std::vector<std::string>& texts,
                                                    const std::string& instruction) const {
  const text::EmbeddingTemplate tmpl(*tokenizer_, settings_.text);
  std::vector<std::vector<int32_t>> ids(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) ids[i] = tmpl.encode(texts[i], instruction, settings_.text.max_length).ids;
  return ids;
}

torch::Tensor Encoder::encode(const std::vector<std::string>& texts, const std::string& instruction) {
  return encode_ids(tokenize(texts, instruction));
}

torch::Tensor Encoder::encode_ids(const std::vector<std::vector<int32_t>>& ids) {
  const auto N = static_cast<int64_t>(ids.size());
  auto out = torch::zeros({N, dim()}, torch::kFloat32);
  last_tokens_ = 0;
  if (N == 0) return out;
  const int64_t vocab = model_->config.vocab_size;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i].empty()) throw Error("text " + std::to_string(i) + " has no tokens");
    for (const int32_t id : ids[i])
      if (id < 0 || id >= vocab)
        throw Error("text " + std::to_string(i) + ": token id " + std::to_string(id) +
                    " is outside the model's vocabulary (" + std::to_string(vocab) + ")");
  }
  // 1. Longest first (stable), so each batch holds texts of similar length and the first
  //    batch shows at once whether the longest texts fit in memory.
  std::vector<int64_t> order(ids.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ids[a].size() > ids[b].size(); });
  const torch::Device device = model_->embed->weight.device();
  const bool left = settings_.text.padding_side != "right";
  torch::NoGradGuard no_grad;
  util::Progress progress(N, "texts", stderr);
  int64_t done = 0, unreported = 0;
  auto last_report = std::chrono::steady_clock::now();
  for (size_t start = 0; start < order.size();) {
    // 2. As many texts as fit in batch_tokens once padded to the first (longest) one.
    const int64_t T = static_cast<int64_t>(ids[order[start]].size());
    const int64_t rows = std::max<int64_t>(1, settings_.batch_tokens / T);
    const size_t end = std::min(order.size(), start + static_cast<size_t>(rows));
    const int64_t B = static_cast<int64_t>(end - start);
    auto batch = torch::zeros({B, T}, torch::kLong), mask = torch::zeros({B, T}, torch::kLong);
    auto a = batch.accessor<int64_t, 2>();
    auto m = mask.accessor<int64_t, 2>();
    for (int64_t b = 0; b < B; ++b) {
      const auto& row = ids[order[start + b]];
      const int64_t n = static_cast<int64_t>(row.size()), offset = left ? T - n : 0;
      for (int64_t t = 0; t < n; ++t) {
        a[b][offset + t] = row[t];
        m[b][offset + t] = 1;
      }
    }
    // 3. Forward, pool, normalise in float32, scatter back to input order.
    // The mask stays on the host: the pass lays itself out from it (padding-free, transformer.h).
    auto hidden = model_->forward(model::to_device_async(batch, device), mask).last_hidden_state;  // (B, T, C)
    auto pooled = model::pool(hidden, mask, settings_.pooling).to(torch::kFloat32);  // (B, C)
    if (settings_.normalize)
      pooled = torch::nn::functional::normalize(pooled, torch::nn::functional::NormalizeFuncOptions().dim(-1));
    std::vector<int64_t> rows_back(order.begin() + static_cast<int64_t>(start), order.begin() + static_cast<int64_t>(end));
    out.index_copy_(0, torch::tensor(rows_back, torch::kLong), pooled.to(torch::kCPU));
    last_tokens_ += B * T;
    done += B;
    unreported += B;
    // At most one progress line a second (each line is a log line when not on a terminal).
    const auto now = std::chrono::steady_clock::now();
    if (settings_.show_progress && (done == N || now - last_report >= std::chrono::seconds(1))) {
      progress.update(done, {}, static_cast<double>(unreported), "texts");
      unreported = 0;
      last_report = now;
    }
    start = end;
  }
  if (settings_.show_progress) progress.finish();
  return out;
}

}  // namespace bireco::eval
