#include "bireco/distributed/all_gather.h"

#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include "group_impl.h"

namespace bireco::distributed {
namespace {

class AllGatherFunction : public torch::autograd::Function<AllGatherFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               Group* group) {
    // saved_data holds IValues only: the group is kept as its address (it outlives the graph).
    ctx->saved_data["group"] = reinterpret_cast<int64_t>(group);
    ctx->saved_data["rows"] = x.size(0);
    return group->all_gather(x);  // [world*B, C]
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto* group = reinterpret_cast<Group*>(ctx->saved_data["group"].toInt());
    const int64_t rows = ctx->saved_data["rows"].toInt();
    torch::Tensor summed = grads[0].contiguous().clone();  // [world*B, C]
    group->impl().check_device(summed, "all_gather backward (all_reduce)");
    std::vector<at::Tensor> one = {summed};
    group->impl().wait(group->impl().collectives->allreduce(one), "all_gather backward (all_reduce)");
    return {summed.narrow(0, group->rank() * rows, rows), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor all_gather_with_grad(Group& group, const torch::Tensor& x) {
  return AllGatherFunction::apply(x, &group);
}

}  // namespace bireco::distributed
