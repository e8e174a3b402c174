// All-gather that gradients flow through: the contrastive loss's negatives from every rank.
#pragma once

#include <torch/torch.h>

#include "bireco/distributed/group.h"

namespace bireco::distributed {

// x [B, C] on every rank (same shape everywhere) -> [world*B, C], rank r's rows at r*B.
// Backward: every rank's loss may depend on every rank's rows, so the gradient of x_r is the
// SUM over ranks of d loss_k / d(rows of r): all-reduce (sum) the incoming [world*B, C]
// gradient and keep this rank's slice. Same semantics as torch.distributed.nn.all_gather.
// Every rank must run the backward (it is a collective).
torch::Tensor all_gather_with_grad(Group& group, const torch::Tensor& x);

}  // namespace bireco::distributed
