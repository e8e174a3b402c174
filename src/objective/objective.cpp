#include "bireco/objective/objective.h"

#include "bireco/objective/causal_lm.h"
#include "bireco/objective/contrastive.h"
#include "bireco/objective/reconstruction.h"
#include "bireco/util/error.h"

namespace bireco::objective {

std::unique_ptr<Objective> make_objective(const config::StageConfig& config, int64_t eos_id, distributed::Group* group) {
  if (config.stage == "reconstruction") {
    if (eos_id < 0) throw Error("stage reconstruction: the tokenizer has no EOS token");
    return std::make_unique<Reconstruction>(reconstruction_options(config, eos_id));
  }
  if (config.stage == "lm")
    return std::make_unique<CausalLm>(config.objective.loss_chunk_tokens,
                                      head_gradient_from_name(config.objective.loss_head_gradient));
  if (config.stage == "contrastive") return std::make_unique<Contrastive>(contrastive_options(config), group);
  throw Error("stage: '" + config.stage + "' is not one of reconstruction, contrastive, lm");
}

}  // namespace bireco::objective
