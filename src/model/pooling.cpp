// last / mean / weighted-mean pooling over the attention mask.
#include "bireco/model/pooling.h"

#include "bireco/model/packing.h"

#include "bireco/util/error.h"

namespace bireco::model {

torch::Tensor last_token_index(const torch::Tensor& mask) {
  const int64_t T = mask.size(1);
  auto idx = torch::arange(T, mask.options().dtype(torch::kLong)).expand_as(mask);
  return (idx * mask.to(torch::kLong)).amax(1);  // works for left and right padding
}

torch::Tensor pool(const torch::Tensor& hidden, const torch::Tensor& mask, const std::string& mode, bool normalize) {
  auto m = to_device_async(mask, hidden.device());
  torch::Tensor out;
  if (mode == "last") {
    auto idx = last_token_index(m);
    out = hidden.index({torch::arange(hidden.size(0), idx.options()), idx});  // (B, C)
  } else if (mode == "mean" || mode == "weighted_mean") {
    auto w = m.to(torch::kFloat32);
    if (mode == "weighted_mean") w = w.cumsum(1) * w;  // k-th real token gets weight k
    w = w / w.sum(1, true).clamp_min(1e-12);
    out = (hidden.to(torch::kFloat32) * w.unsqueeze(-1)).sum(1).to(hidden.scalar_type());
  } else {
    throw Error("model.pooling: unknown pooling `" + mode + "` (last, mean, weighted_mean)");
  }
  return normalize ? torch::nn::functional::normalize(out, torch::nn::functional::NormalizeFuncOptions().dim(-1))
                   : out;
}

}  // namespace bireco::model
