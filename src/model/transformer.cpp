// Linear (+LoRA), RMSNorm, SwiGLU MLP, the decoder layer and the Transformer
// (transformers' modeling_llama.py structure; Mistral/Qwen2/Qwen3 differ only by spec).
#include "bireco/model/transformer.h"

#include <cmath>

#include "bireco/model/checkpointing.h"

namespace bireco::model {

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
  // Zeros, not nn.Linear's init: model::load always fills weights (file or seeded init).
  weight = register_parameter("weight", torch::zeros({out, in}));
  if (with_bias) bias = register_parameter("bias", torch::zeros({out}));
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  auto y = torch::nn::functional::linear(x, weight, bias);
  if (!lora_A.defined()) return y;
  auto h = lora_dropout > 0 ? torch::dropout(x, lora_dropout, is_training()) : x;
  return y + torch::matmul(torch::matmul(h, lora_A.t()), lora_B.t()) * lora_scaling;
}

void LinearImpl::add_lora(int64_t r, double alpha, double dropout) {
  // Submodules lora_A / lora_B holding `weight`, as PEFT names them (q_proj.lora_A.weight).
  auto options = weight.options();
  auto a = register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(in_features, r).bias(false)));
  auto b = register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(r, out_features).bias(false)));
  a->to(options.device(), options.dtype().toScalarType());
  b->to(options.device(), options.dtype().toScalarType());
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(a->weight, std::sqrt(5.0));  // PEFT: kaiming_uniform_(a=sqrt(5))
  b->weight.zero_();
  lora_A = a->weight;
  lora_B = b->weight;
  lora_scaling = alpha / static_cast<double>(r);
  lora_dropout = dropout;
}

void LinearImpl::merge_lora() {
  if (!lora_A.defined()) return;
  {
    torch::NoGradGuard no_grad;
    weight.add_(torch::matmul(lora_B, lora_A) * lora_scaling);
  }
  unregister_module("lora_A");
  unregister_module("lora_B");
  lora_A = lora_B = torch::Tensor();
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto h = x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * h.to(x.scalar_type());
}

MlpImpl::MlpImpl(const ModelConfig& c) {
  gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias));
  down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, c.mlp_bias));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return down_proj(torch::silu(gate_proj(x)) * up_proj(x));
}

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c) {
  self_attn = register_module("self_attn", Attention(c));
  mlp = register_module("mlp", Mlp(c));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const AttentionInputs& in) {
  auto h = x + self_attn(input_layernorm(x), in);
  return h + mlp(post_attention_layernorm(h));
}

torch::Tensor positions_from_mask(const torch::Tensor& attention_mask) {
  return (attention_mask.to(torch::kLong).cumsum(-1) - 1).clamp_min(0);
}

torch::Tensor attention_visibility(const torch::Tensor& attention_mask, bool bidirectional, int64_t window) {
  const int64_t B = attention_mask.size(0), T = attention_mask.size(1);
  auto idx = torch::arange(T, attention_mask.options().dtype(torch::kLong));
  auto i = idx.view({T, 1}), j = idx.view({1, T});
  auto allowed = attention_mask.to(torch::kBool).view({B, 1, 1, T}).expand({B, 1, T, T});  // keys
  if (!bidirectional) allowed = allowed.logical_and(j <= i);
  if (window > 0) allowed = allowed.logical_and((i - j < window).logical_and(j - i < window));
  return allowed.logical_or(i == j);
}

TransformerImpl::TransformerImpl(ModelConfig c) : config(std::move(c)) {
  embed = register_module("embed_tokens", torch::nn::Embedding(config.vocab_size, config.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) layers->push_back(DecoderLayer(config));
  norm = register_module("norm", RMSNorm(config.hidden_size, config.rms_norm_eps));
  if (!config.tie_word_embeddings) {
    auto head = register_module("lm_head", Linear(config.hidden_size, config.vocab_size, false));
    lm_head_weight = head->weight;
  }
  // Kept out of the module's buffers so that `to(bfloat16)` never rounds it (float32 always).
  inv_freq = rope_inv_freq(config);
}

torch::Tensor TransformerImpl::embed_tokens(const torch::Tensor& ids) { return embed(ids); }

TransformerOutput TransformerImpl::forward_embeds(const torch::Tensor& embeds, const torch::Tensor& attention_mask,
                                                  bool output_hidden_states, const torch::Tensor& position_ids,
                                                  bool mask_is_padding) {
  TORCH_CHECK(embeds.dim() == 3 && attention_mask.dim() == 2 && embeds.size(0) == attention_mask.size(0) &&
                  embeds.size(1) == attention_mask.size(1),
              "forward_embeds: embeds [B, T, C] and attention_mask [B, T] disagree: ", embeds.sizes(), " vs ",
              attention_mask.sizes());
  TransformerOutput out;
  auto* states = output_hidden_states ? &out.hidden_states : nullptr;
  // A block without padding is already padding-free: the batched pass (one SDPA call) is
  // then at least as fast as the per-sequence one. The mask is read where it lives (the host,
  // for the collator's blocks).
  const bool packed = padding_free && mask_is_padding && !attention_mask.all().item<bool>();
  if (!packed) {
    out.last_hidden_state = run_layers(embeds, attention_inputs(embeds, attention_mask, position_ids), states);
    return out;
  }
  const int64_t B = embeds.size(0), T = embeds.size(1);
  AttentionInputs in;
  in.packed = std::make_shared<const PackedLayout>(pack_layout(attention_mask, position_ids, embeds.device()));
  in.bidirectional = bidirectional;
  in.window = config.sliding_window;
  std::tie(in.cos, in.sin) =
      rope_cos_sin(inv_freq_on(embeds.device()), in.packed->positions, embeds.scalar_type());  // (1, N, D)
  auto hidden = run_layers(pack(embeds, *in.packed), in, states);  // (1, N, C)
  out.last_hidden_state = unpack(hidden, *in.packed, B, T);
  for (auto& h : out.hidden_states) h = unpack(h, *in.packed, B, T);
  return out;
}

torch::Tensor TransformerImpl::run_layers(torch::Tensor x, const AttentionInputs& in,
                                          std::vector<torch::Tensor>* hidden_states) {
  if (hidden_states != nullptr) hidden_states->push_back(x);
  const bool recompute = gradient_checkpointing && is_training() && torch::GradMode::is_enabled();
  for (size_t l = 0; l < layers->size(); ++l) {
    auto layer = layers->ptr<DecoderLayerImpl>(l);
    if (recompute)
      x = checkpoint([layer, in](const torch::Tensor& h) { return layer->forward(h, in); }, x);
    else
      x = layer->forward(x, in);
    if (hidden_states != nullptr && l + 1 < layers->size()) hidden_states->push_back(x);
  }
  x = norm(x);
  if (hidden_states != nullptr) hidden_states->push_back(x);
  return x;
}

const torch::Tensor& TransformerImpl::inv_freq_on(const torch::Device& device) {
  if (!inv_freq_device_.defined() || inv_freq_device_.device() != device) inv_freq_device_ = inv_freq.to(device);
  return inv_freq_device_;
}

AttentionInputs TransformerImpl::attention_inputs(const torch::Tensor& embeds,
                                                  const torch::Tensor& attention_mask,
                                                  const torch::Tensor& position_ids) {
  // Read before the copy to the device: the collator's mask lives on the CPU, so deciding
  // whether a mask tensor is needed costs no device synchronisation.
  const bool padded = !attention_mask.all().item<bool>();
  const bool window_hides = config.sliding_window > 0 && config.sliding_window < embeds.size(1);
  AttentionInputs in;
  in.attention_mask = to_device_async(attention_mask, embeds.device());
  in.bidirectional = bidirectional;
  in.window = config.sliding_window;
  auto positions = position_ids.defined() ? to_device_async(position_ids, embeds.device())
                                          : positions_from_mask(in.attention_mask);
  std::tie(in.cos, in.sin) = rope_cos_sin(inv_freq_on(embeds.device()), positions, embeds.scalar_type());
  if (padded || window_hides) in.allowed = visibility(in);
  return in;
}

TransformerOutput TransformerImpl::forward(const torch::Tensor& ids, const torch::Tensor& attention_mask,
                                           bool output_hidden_states) {
  return forward_embeds(embed_tokens(ids), attention_mask, output_hidden_states);
}

torch::Tensor TransformerImpl::lm_head(const torch::Tensor& hidden) {
  return torch::matmul(hidden, (lm_head_weight.defined() ? lm_head_weight : embed->weight).t());
}

}  // namespace bireco::model
