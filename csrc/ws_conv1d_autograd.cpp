// Autograd of wsnet_ext::ws_conv1d_forward, in C++: the backward is the ws_conv1d_backward op
// (DESIGN.md §2 backward) with an output mask of the inputs that need gradients. Registered at the
// Autograd key, so a training step runs no Python between the ops (the Python
// torch.library.register_autograd form cost ~50 us per forward+backward, measured on SoundNet's
// conv5, a 0.4 ms layer). torch.compile traces through it to the two ops' fake kernels.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <array>
#include <tuple>
#include <vector>

namespace wsnet {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor call_forward(const at::Tensor& input, const at::Tensor& condensed,
                        const c10::optional<at::Tensor>& bias, int64_t kernel_size,
                        int64_t sample_stride, int64_t channel_repeat, int64_t stride,
                        at::IntArrayRef padding, int64_t dilation) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("wsnet_ext::ws_conv1d_forward", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&,
                                               const c10::optional<at::Tensor>&, int64_t, int64_t,
                                               int64_t, int64_t, at::IntArrayRef, int64_t)>();
  return op.call(input, condensed, bias, kernel_size, sample_stride, channel_repeat, stride, padding,
                 dilation);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> call_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& condensed,
    int64_t kernel_size, int64_t sample_stride, int64_t channel_repeat, int64_t stride,
    at::IntArrayRef padding, int64_t dilation, std::array<bool, 3> mask) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("wsnet_ext::ws_conv1d_backward", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
              const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t, int64_t, int64_t,
              int64_t, at::IntArrayRef, int64_t, std::array<bool, 3>)>();
  return op.call(grad_output, input, condensed, kernel_size, sample_stride, channel_repeat, stride,
                 padding, dilation, mask);
}

class WSConv1dFunction : public torch::autograd::Function<WSConv1dFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& condensed, const c10::optional<at::Tensor>& bias,
                            int64_t kernel_size, int64_t sample_stride, int64_t channel_repeat,
                            int64_t stride, at::IntArrayRef padding, int64_t dilation) {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    ctx->save_for_backward({input, condensed});
    ctx->saved_data["options"] = std::vector<int64_t>{kernel_size, sample_stride, channel_repeat,
                                                      stride, padding[0], padding[1], dilation};
    ctx->saved_data["has_bias"] = bias.has_value() && bias->defined();
    return call_forward(input, condensed, bias, kernel_size, sample_stride, channel_repeat, stride,
                        padding, dilation);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const std::vector<int64_t> o = ctx->saved_data["options"].toIntVector();
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    // gradient edges: input, condensed, and bias when one was given
    const std::array<bool, 3> mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1),
                                   has_bias && ctx->needs_input_grad(2)};
    const std::vector<int64_t> padding{o[4], o[5]};
    auto [grad_input, grad_condensed, grad_bias] =
        call_backward(grad_outputs[0], saved[0], saved[1], o[0], o[1], o[2], o[3], padding, o[6], mask);
    // one entry per forward argument; undefined where no gradient is wanted or none exists
    return {mask[0] ? grad_input : at::Tensor(), mask[1] ? grad_condensed : at::Tensor(),
            mask[2] ? grad_bias : at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

at::Tensor ws_conv1d_forward_autograd(const at::Tensor& input, const at::Tensor& condensed,
                                      const c10::optional<at::Tensor>& bias, int64_t kernel_size,
                                      int64_t sample_stride, int64_t channel_repeat, int64_t stride,
                                      at::IntArrayRef padding, int64_t dilation) {
  return WSConv1dFunction::apply(input, condensed, bias, kernel_size, sample_stride, channel_repeat,
                                 stride, padding, dilation);
}

}  // namespace

TORCH_LIBRARY_IMPL(wsnet_ext, Autograd, m) {
  m.impl("ws_conv1d_forward", &ws_conv1d_forward_autograd);
}

}  // namespace wsnet
