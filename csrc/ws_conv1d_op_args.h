// Host-side: turn the arguments of the registered ops into a Conv1dGeometry, checking what the
// kernels rely on. The Python wrappers (wsnet_ext/functional.py) give users friendlier errors
// first; these checks keep a direct torch.ops call from ever reading out of bounds.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include "ws_conv1d_geometry.h"

namespace wsnet {

inline Conv1dGeometry make_conv1d_geometry(const at::Tensor& input, const at::Tensor& condensed,
                                           int64_t kernel_size, int64_t sample_stride,
                                           int64_t channel_repeat, int64_t stride,
                                           at::IntArrayRef padding, int64_t dilation) {
  TORCH_CHECK_VALUE(input.dim() == 3, "ws_conv1d: expected input of shape (B, M, T), got ",
                    input.sizes());
  TORCH_CHECK_VALUE(condensed.dim() == 2,
                    "ws_conv1d: expected condensed of shape (Mc, Lc), got ", condensed.sizes());
  TORCH_CHECK_VALUE(kernel_size >= 1 && sample_stride >= 1 && channel_repeat >= 1 &&
                        stride >= 1 && dilation >= 1,
                    "ws_conv1d: expected kernel_size, sample_stride, channel_repeat, stride and "
                    "dilation >= 1, got ",
                    kernel_size, ", ", sample_stride, ", ", channel_repeat, ", ", stride, ", ",
                    dilation);
  TORCH_CHECK_VALUE(padding.size() == 2 && padding[0] >= 0 && padding[1] >= 0,
                    "ws_conv1d: expected padding [left, right] >= 0, got ", padding);
  TORCH_CHECK_VALUE(input.scalar_type() == condensed.scalar_type(),
                    "ws_conv1d: expected input and condensed of one dtype, got ",
                    input.scalar_type(), " and ", condensed.scalar_type());
  TORCH_CHECK_VALUE(input.device() == condensed.device(),
                    "ws_conv1d: expected input and condensed on one device, got ", input.device(),
                    " and ", condensed.device());
  Conv1dGeometry g{};
  g.batch = input.size(0);
  g.in_channels = input.size(1);
  g.length = input.size(2);
  g.condensed_channels = condensed.size(0);
  g.condensed_len = condensed.size(1);
  g.kernel_size = kernel_size;
  g.sample_stride = sample_stride;
  g.stride = stride;
  g.pad_left = padding[0];
  g.pad_right = padding[1];
  g.dilation = dilation;
  TORCH_CHECK_VALUE(g.condensed_channels >= 1 &&
                        g.in_channels == g.condensed_channels * channel_repeat,
                    "ws_conv1d: expected in_channels = condensed.shape[0] * channel_repeat = ",
                    g.condensed_channels, " * ", channel_repeat, ", got in_channels ",
                    g.in_channels);
  TORCH_CHECK_VALUE(g.condensed_len >= kernel_size &&
                        (g.condensed_len - kernel_size) % sample_stride == 0,
                    "ws_conv1d: expected condensed length kernel_size + (N - 1) * sample_stride "
                    "for a whole N >= 1, got ",
                    g.condensed_len, " with kernel_size ", kernel_size, " and sample_stride ",
                    sample_stride);
  g.out_channels = (g.condensed_len - kernel_size) / sample_stride + 1;
  g.padded_len = g.length + g.pad_left + g.pad_right;
  g.out_len = conv_out_length(g.length, g.pad_left + g.pad_right, dilation, kernel_size, stride);
  TORCH_CHECK_VALUE(g.out_len >= 1, "ws_conv1d: expected an output length >= 1, got input length ",
                    g.length, " with padding ", padding, ", kernel_size ", kernel_size,
                    ", dilation ", dilation);
  return g;
}

inline void check_conv1d_bias(const c10::optional<at::Tensor>& bias, const at::Tensor& input,
                              const Conv1dGeometry& g) {
  if (!bias.has_value()) return;
  TORCH_CHECK_VALUE(bias->dim() == 1 && bias->size(0) == g.out_channels,
                    "ws_conv1d: expected bias of shape (", g.out_channels, ",), got ",
                    bias->sizes());
  TORCH_CHECK_VALUE(bias->scalar_type() == input.scalar_type() &&
                        bias->device() == input.device(),
                    "ws_conv1d: expected bias of the input's dtype and device, got ",
                    bias->scalar_type(), " on ", bias->device());
}

inline void check_conv1d_grad_output(const at::Tensor& grad_output, const at::Tensor& input,
                                     const Conv1dGeometry& g) {
  TORCH_CHECK_VALUE(grad_output.dim() == 3 && grad_output.size(0) == g.batch &&
                        grad_output.size(1) == g.out_channels &&
                        grad_output.size(2) == g.out_len,
                    "ws_conv1d_backward: expected grad_output of shape (", g.batch, ", ",
                    g.out_channels, ", ", g.out_len, "), got ", grad_output.sizes());
  TORCH_CHECK_VALUE(grad_output.scalar_type() == input.scalar_type() &&
                        grad_output.device() == input.device(),
                    "ws_conv1d_backward: expected grad_output of the input's dtype and device, "
                    "got ",
                    grad_output.scalar_type(), " on ", grad_output.device());
}

}  // namespace wsnet
