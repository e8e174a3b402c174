// `bireco forward`: run the model on token ids and write hidden states, logits and embeddings
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "bireco/cli/command.h"
#include "bireco/model/load.h"
#include "bireco/model/pooling.h"
#include "bireco/model/safetensors.h"
#include "bireco/util/error.h"
#include "bireco/util/json_excerpt.h"

namespace bireco::cli {
namespace {

// ids.json {"input_ids": [[...], ...]} -> right-padded ids and mask [B, L].
std::pair<torch::Tensor, torch::Tensor> read_token_rows(const std::string& file, int64_t vocab) {
  std::ifstream in(file);
  if (!in) throw Error(file + ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(file + ": invalid JSON: " + util::json_error_text(e));
  }
  if (!j.contains("input_ids") || !j["input_ids"].is_array() || j["input_ids"].empty())
    throw Error(file + ": `input_ids` must be a non-empty list of token id lists");
  const auto& rows = j["input_ids"];
  size_t L = 0;
  for (const auto& r : rows) {
    if (!r.is_array() || r.empty()) throw Error(file + ": every `input_ids` row must be a non-empty list");
    L = std::max(L, r.size());
  }
  const auto B = static_cast<int64_t>(rows.size());
  auto ids = torch::zeros({B, static_cast<int64_t>(L)}, torch::kLong), mask = torch::zeros_like(ids);
  auto a = ids.accessor<int64_t, 2>();
  auto m = mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b)
    for (size_t t = 0; t < rows[b].size(); ++t) {
      const auto& v = rows[b][t];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= vocab)
        throw Error(file + ": input_ids[" + std::to_string(b) + "][" + std::to_string(t) + "] = " + v.dump() +
                    " is not a token id in [0, " + std::to_string(vocab) + ")");
      a[b][t] = v.get<int64_t>();
      m[b][t] = 1;
    }
  return {ids, mask};
}

}  // namespace

Command add_forward(CLI::App& app) {
  struct Options {
    std::string model, tokens, out, dtype = "float32";
    bool padded = false;
  };
  auto o = std::make_shared<Options>();
  auto* sub = app.add_subcommand("forward", "run the model on token ids and write hidden states, logits and embeddings");
  sub->add_option("--model", o->model, "Hugging Face model directory")->required();
  sub->add_option("--tokens", o->tokens, "ids.json: {\"input_ids\": [[...], ...]}")->required();
  sub->add_option("--out", o->out, "out.safetensors")->required();
  sub->add_option("--dtype", o->dtype, "float32, bfloat16 or float16")->capture_default_str();
  sub->add_flag("--padded", o->padded,
                "run the padded batch as transformers does (default: padding-free, as bireco trains "
                "and embeds; equal at real tokens to fp32 rounding)");
  return {sub, [o]() -> int {
            config::ModelConfig mc;
            mc.path = o->model;
            mc.dtype = o->dtype;
            model::parse_dtype(o->dtype, "--dtype");
            auto m = model::load(mc, 0);
            m->eval();
            m->padding_free = !o->padded;
            torch::NoGradGuard no_grad;
            auto [ids, mask] = read_token_rows(o->tokens, m->config.vocab_size);
            const torch::Device device = m->embed->weight.device();
            auto hidden = m->forward(ids.to(device), mask).last_hidden_state;  // (B, L, C)
            const int64_t B = hidden.size(0), L = hidden.size(1);
            // One row at a time keeps the [L, V] logits of a single text in memory.
            std::vector<torch::Tensor> logits;
            for (int64_t b = 0; b < B; ++b) logits.push_back(m->lm_head(hidden[b]).to(torch::kFloat32));
            auto keep = mask.to(torch::kFloat32).unsqueeze(-1);  // zeros at padding
            model::NamedTensors out = {
                {"last_hidden_state", hidden.to(torch::kCPU, torch::kFloat32) * keep},
                {"logits", torch::stack(logits).to(torch::kCPU) * keep},
                {"embedding", model::pool(hidden, mask, "last").to(torch::kCPU, torch::kFloat32)}};
            model::write_safetensors(o->out, out);
            std::cout << "wrote " << o->out << ": " << B << " rows x " << L << " positions\n";
            return kExitOk;
          }};
}

}  // namespace bireco::cli
