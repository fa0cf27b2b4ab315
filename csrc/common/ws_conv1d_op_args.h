// Host-side: turn the arguments of the registered ops into a Conv1dGeometry, checking what the
// kernels rely on. The Python wrappers (wsnet_ext/functional.py) are the boundary users meet and
// raise ValueErrors first; these checks keep a direct torch.ops call from ever reading out of
// bounds, and raise RuntimeErrors with the same "expected X, got Y" shape.
#pragma once

#include <limits>
#include <optional>
#include <vector>

#include "common/ws_conv1d_geometry.h"
#include "common/ws_stable.h"

namespace wsnet {

// Options are user integers: products of two of them are checked before use. Keeping every
// option below 2^31 makes each product of two fit in int64 with room to spare.
constexpr int64_t kMaxOption = std::numeric_limits<int32_t>::max();

inline Conv1dGeometry make_conv1d_geometry(const Tensor& input, const Tensor& condensed,
                                           int64_t kernel_size, int64_t sample_stride,
                                           int64_t channel_repeat, int64_t stride,
                                           IntArray padding, int64_t dilation) {
  WS_CHECK(input.dim() == 3, "ws_conv1d: expected input of shape (B, M, T), got ",
           shape_of(input));
  WS_CHECK(condensed.dim() == 2, "ws_conv1d: expected condensed of shape (Mc, Lc), got ",
           shape_of(condensed));
  WS_CHECK(kernel_size >= 1 && sample_stride >= 1 && channel_repeat >= 1 && stride >= 1 &&
               dilation >= 1,
           "ws_conv1d: expected kernel_size, sample_stride, channel_repeat, stride and dilation "
           ">= 1, got ", kernel_size, ", ", sample_stride, ", ", channel_repeat, ", ", stride,
           ", ", dilation);
  WS_CHECK(kernel_size <= kMaxOption && sample_stride <= kMaxOption &&
               channel_repeat <= kMaxOption && stride <= kMaxOption && dilation <= kMaxOption,
           "ws_conv1d: expected kernel_size, sample_stride, channel_repeat, stride and dilation "
           "< 2^31, got ", kernel_size, ", ", sample_stride, ", ", channel_repeat, ", ", stride,
           ", ", dilation);
  WS_CHECK(padding.size() == 2, "ws_conv1d: expected padding [left, right], got ",
           shape_of(padding));
  WS_CHECK(padding[0] >= 0 && padding[1] >= 0 && padding[0] <= kMaxOption &&
               padding[1] <= kMaxOption,
           "ws_conv1d: expected padding [left, right] in [0, 2^31), got ", shape_of(padding));
  WS_CHECK(input.scalar_type() == condensed.scalar_type(),
           "ws_conv1d: expected input and condensed of one dtype, got ", input.scalar_type(),
           " and ", condensed.scalar_type());
  WS_CHECK(same_device(input, condensed),
           "ws_conv1d: expected input and condensed on one device, got ", device_of(input),
           " and ", device_of(condensed));
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
  // sizes are < 2^63 and channel_repeat < 2^31: compare by division, never by an overflowing product
  WS_CHECK(g.condensed_channels >= 1 && g.in_channels % channel_repeat == 0 &&
               g.in_channels / channel_repeat == g.condensed_channels,
           "ws_conv1d: expected in_channels = condensed.shape[0] * channel_repeat = ",
           g.condensed_channels, " * ", channel_repeat, ", got in_channels ", g.in_channels);
  WS_CHECK(g.condensed_len >= kernel_size && (g.condensed_len - kernel_size) % sample_stride == 0,
           "ws_conv1d: expected condensed length kernel_size + (N - 1) * sample_stride for a "
           "whole N >= 1, got ", g.condensed_len, " with kernel_size ", kernel_size,
           " and sample_stride ", sample_stride);
  g.out_channels = (g.condensed_len - kernel_size) / sample_stride + 1;
  g.padded_len = g.length + g.pad_left + g.pad_right;  // each term < 2^62
  g.out_len = conv_out_length(g.length, g.pad_left + g.pad_right, dilation, kernel_size, stride);
  WS_CHECK(g.out_len >= 1, "ws_conv1d: expected an output length >= 1, got input length ",
           g.length, " with padding ", shape_of(padding), ", kernel_size ", kernel_size,
           ", dilation ", dilation);
  return g;
}

inline void check_conv1d_bias(const std::optional<Tensor>& bias, const Tensor& input,
                              const Conv1dGeometry& g) {
  if (!bias.has_value()) return;
  WS_CHECK(bias->dim() == 1 && bias->size(0) == g.out_channels,
           "ws_conv1d: expected bias of shape (", g.out_channels, ",), got ", shape_of(*bias));
  WS_CHECK(bias->scalar_type() == input.scalar_type() && same_device(*bias, input),
           "ws_conv1d: expected bias of the input's dtype and device, got ", bias->scalar_type(),
           " on ", device_of(*bias));
}

inline void check_conv1d_grad_output(const Tensor& grad_output, const Tensor& input,
                                     const Conv1dGeometry& g) {
  WS_CHECK(grad_output.dim() == 3 && grad_output.size(0) == g.batch &&
               grad_output.size(1) == g.out_channels && grad_output.size(2) == g.out_len,
           "ws_conv1d_backward: expected grad_output of shape (", g.batch, ", ", g.out_channels,
           ", ", g.out_len, "), got ", shape_of(grad_output));
  WS_CHECK(grad_output.scalar_type() == input.scalar_type() && same_device(grad_output, input),
           "ws_conv1d_backward: expected grad_output of the input's dtype and device, got ",
           grad_output.scalar_type(), " on ", device_of(grad_output));
}

// The backward op's arguments, checked: the geometry of its forward, grad_output's shape, dtype and
// device, and an output mask of three entries (the same for both devices).
inline Conv1dGeometry make_conv1d_backward_geometry(const Tensor& grad_output, const Tensor& input,
                                                    const Tensor& condensed, int64_t kernel_size,
                                                    int64_t sample_stride, int64_t channel_repeat,
                                                    int64_t stride, IntArray padding, int64_t dilation,
                                                    const std::vector<bool>& output_mask) {
  WS_CHECK(output_mask.size() == 3, "ws_conv1d_backward: expected an output_mask of 3 bools, got ",
           output_mask.size());
  const Conv1dGeometry g = make_conv1d_geometry(input, condensed, kernel_size, sample_stride,
                                                channel_repeat, stride, padding, dilation);
  check_conv1d_grad_output(grad_output, input, g);
  return g;
}

// (In an unnamed namespace: they hold tensors, whose type has hidden visibility.)
namespace {

// What every device's forward entry starts from: the checked geometry and bias, and contiguous
// operands, the condensed filter in `cond_dtype` (the accumulation type on CUDA).
struct ForwardOperands {
  Conv1dGeometry g;
  Tensor x, cond;
  std::optional<Tensor> bias;
};
inline ForwardOperands forward_operands(const Tensor& input, const Tensor& condensed,
                                        const std::optional<Tensor>& bias, int64_t kernel_size,
                                        int64_t sample_stride, int64_t channel_repeat, int64_t stride,
                                        IntArray padding, int64_t dilation, ScalarType cond_dtype) {
  const Conv1dGeometry g = make_conv1d_geometry(input, condensed, kernel_size, sample_stride,
                                                channel_repeat, stride, padding, dilation);
  check_conv1d_bias(bias, input, g);
  return {g, as_contiguous(input), as_contiguous(to_dtype(condensed, cond_dtype)), as_contiguous(bias)};
}

// The same for the backward entries.
struct BackwardOperands {
  Conv1dGeometry g;
  Tensor gy, x, cond;
};
inline BackwardOperands backward_operands(const Tensor& grad_output, const Tensor& input, const Tensor& condensed,
                                          int64_t kernel_size, int64_t sample_stride, int64_t channel_repeat,
                                          int64_t stride, IntArray padding, int64_t dilation,
                                          const std::vector<bool>& output_mask, ScalarType cond_dtype) {
  const Conv1dGeometry g = make_conv1d_backward_geometry(grad_output, input, condensed, kernel_size,
                                                         sample_stride, channel_repeat, stride,
                                                         padding, dilation, output_mask);
  return {g, as_contiguous(grad_output), as_contiguous(input), as_contiguous(to_dtype(condensed, cond_dtype))};
}

}  // namespace

}  // namespace wsnet
