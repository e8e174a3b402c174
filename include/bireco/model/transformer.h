// The decoder-only Transformer shared by every supported family; per-family differences
// (biases, q/k norm, rope scaling, sliding window, tied head) come from ModelConfig.
// Parameter names equal Hugging Face's without the leading `model.` (see hf_io.h).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <vector>

#include "bireco/model/model_config.h"
#include "bireco/model/packing.h"

namespace bireco::model {

// A linear layer y = x W^T + b, optionally with a LoRA adapter added:
// y += dropout(x) A^T B^T * (alpha / r)   (A: [r, in], B: [out, r]; parameters named
// lora_A.weight / lora_B.weight as in PEFT).
struct LinearImpl : torch::nn::Module {
  LinearImpl(int64_t in, int64_t out, bool bias);
  torch::Tensor forward(const torch::Tensor& x);

  // Adds a fresh adapter as PEFT does: A kaiming-uniform(a = sqrt(5)), B zeros.
  void add_lora(int64_t r, double alpha, double dropout);
  bool has_lora() const { return lora_A.defined(); }
  // W += B A * scaling, then drops the adapter.
  void merge_lora();

  int64_t in_features, out_features;
  torch::Tensor weight, bias, lora_A, lora_B;  // lora_*: the adapter submodules' weights
  double lora_scaling = 0.0, lora_dropout = 0.0;
};
TORCH_MODULE(Linear);

// RMSNorm in float32 as transformers computes it: w * (x / sqrt(mean(x^2) + eps)).
struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// Rotary inverse frequencies [D/2] (after `rope_scaling`), float32, as transformers computes them.
torch::Tensor rope_inv_freq(const ModelConfig& config);

// cos and sin [B, T, D] for positions [B, T].
std::pair<torch::Tensor, torch::Tensor> rope_cos_sin(const torch::Tensor& inv_freq,
                                                     const torch::Tensor& positions,
                                                     torch::ScalarType dtype);

// x [B, H, T, D] rotated in transformers' rotate_half form.
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// What every layer of one forward pass shares.
struct AttentionInputs {
  torch::Tensor cos, sin;        // [B, T, D]; packed: [1, N, D]
  torch::Tensor attention_mask;  // [B, T] on the model's device: 1 real, 0 padding; packed: undefined
  bool bidirectional = false;
  int64_t window = 0;  // sliding window (0: none)
  // The visibility as a mask tensor [B, 1, T, T] (query i may attend to key j), built only
  // where padding or the window hides keys. Undefined when the pattern is plain causal (or
  // full, bidirectional): SDPA then runs mask-free with is_causal, so that its flash /
  // memory-efficient kernels can run.
  torch::Tensor allowed;
  // A padding-free pass: the layers see [1, N, C] and attention keeps the sequences apart.
  std::shared_ptr<const PackedLayout> packed;
};

// `in`'s visibility as a mask tensor [B, 1, T, T]: `allowed`, or built from the attention
// mask when `in` holds none (plain_attention always takes this explicit mask).
torch::Tensor visibility(const AttentionInputs& in);

// Plain attention: softmax(q k^T / sqrt(D) masked) v in float32; the reference for SDPA.
// q [B, H, T, D], k/v [B, K, T, D] -> [B, H, T, D]; query head h reads kv head h / (H / K).
torch::Tensor plain_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& allowed);

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const AttentionInputs& in);
  int64_t num_heads, num_kv_heads, head_dim;
  bool use_sdpa = true;  // false: plain_attention, the reference SDPA is tested against
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // Qwen3 only
};
TORCH_MODULE(Attention);

// SwiGLU: down(silu(gate(x)) * up(x)).
struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

struct DecoderLayerImpl : torch::nn::Module {
  explicit DecoderLayerImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const AttentionInputs& in);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

struct TransformerOutput {
  torch::Tensor last_hidden_state;          // [B, T, C], after the final norm
  std::vector<torch::Tensor> hidden_states;  // transformers' output_hidden_states when asked
};

struct TransformerImpl : torch::nn::Module {
  explicit TransformerImpl(ModelConfig config);

  // Token ids [B, T] -> embeddings [B, T, C].
  torch::Tensor embed_tokens(const torch::Tensor& ids);
  // Embeddings [B, T, C] and attention mask [B, T] (1 real, 0 padding; left or right) ->
  // final hidden states. Position of a token = number of real tokens before it, so a text
  // gets the same states alone or padded in any batch. `position_ids` [B, T], when given,
  // replace those positions (stage I's reference_quirks: 0..T-1 counted over padding).
  // With padding_free on and `mask_is_padding` (each row's zeros are padding only, its real
  // tokens one run), a padded block runs packed (packing.h): the states at real tokens are
  // the padded pass's, zeros at padding. Pass the mask on the host (as the collator makes
  // it): deciding the layout then costs no device synchronisation. A mask that hides real
  // tokens (reference_quirks' hidden prefix) must pass mask_is_padding = false.
  TransformerOutput forward_embeds(const torch::Tensor& embeds, const torch::Tensor& attention_mask,
                                   bool output_hidden_states = false,
                                   const torch::Tensor& position_ids = {}, bool mask_is_padding = true);
  TransformerOutput forward(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                            bool output_hidden_states = false);
  // What every layer of forward_embeds(embeds, attention_mask, position_ids) shares: rotary
  // tables and the visibility (a mask tensor only where padding or a window hides keys).
  AttentionInputs attention_inputs(const torch::Tensor& embeds, const torch::Tensor& attention_mask,
                                   const torch::Tensor& position_ids = {});
  // Hidden states [N, C] -> logits [N, V] (callers chunk N).
  torch::Tensor lm_head(const torch::Tensor& hidden);

  ModelConfig config;
  bool bidirectional = false;           // llm2vec-style: no causal mask
  bool gradient_checkpointing = false;  // recompute each layer in backward (training only)
  bool padding_free = true;             // run padded blocks packed (model.padding_free)
  torch::nn::Embedding embed{nullptr};  // registered as `embed_tokens`
  torch::nn::ModuleList layers;
  RMSNorm norm{nullptr};
  torch::Tensor lm_head_weight;  // [V, C]; undefined when tied to embed_tokens
  torch::Tensor inv_freq;        // [D/2] float32, not a parameter or buffer

 private:
  // inv_freq on `device`, copied once per device instead of once per pass.
  const torch::Tensor& inv_freq_on(const torch::Device& device);
  // The decoder layers (checkpointed when training with gradient_checkpointing) and the final
  // norm over x [B, T, C] (packed: [1, N, C]).
  torch::Tensor run_layers(torch::Tensor x, const AttentionInputs& in, std::vector<torch::Tensor>* hidden_states);
  torch::Tensor inv_freq_device_;
};
TORCH_MODULE(Transformer);

// The [B, 1, T, T] visibility mask: causal (unless bidirectional), padding keys hidden,
// a sliding window when window > 0, and the diagonal always visible so that padding query
// rows never see an empty row (no NaN; their outputs are ignored).
torch::Tensor attention_visibility(const torch::Tensor& attention_mask, bool bidirectional, int64_t window);

// Positions [B, T] from a mask: cumsum(mask) - 1, clamped at 0.
torch::Tensor positions_from_mask(const torch::Tensor& attention_mask);

}  // namespace bireco::model
