// Launching the strip kernels (strips/cuda/): the plan's precision, the shared memory limit, the
// forward strip/window launch and the fused backward (both directions' launches of this family).
#pragma once

#include <algorithm>
#include <tuple>
#include <vector>

#include "common/ws_static_switch.h"
#include "common/ws_switches.h"
#include "cuda/ws_cuda_launch.h"
#include "cuda/ws_cuda_shared_limit.h"
#include "cuda/ws_cuda_stable.h"
#include "strips/cuda/ws_conv1d_strip_adjoint_kernel.cuh"
#include "strips/cuda/ws_conv1d_strip_kernel.cuh"

namespace wsnet {

// The strip kernels' shared memory limit on the current device (strip_shared_limit_for).
inline int64_t strip_shared_limit() {
  int device = 0, optin = 0, per_sm = 0;
  WS_CUDA_CHECK(cudaGetDevice(&device));
  WS_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  WS_CUDA_CHECK(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
  return strip_shared_limit_for(optin, per_sm);
}

// The strip kernel's precision: TF32 when the cuda_tf32 switch says so, or when it follows torch
// and torch.backends.cudnn.allow_tf32 is set; float32-faithful (3xTF32) otherwise; CUDA-core FMAs
// when Mc < 8 (tensor cores would be mostly padding) or below sm_80 (no TF32 mma.sync).
inline StripPrecision strip_precision(const Conv1dGeometry& g, int device) {
  int major = 0;
  WS_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  if (g.condensed_channels < kStripMinMmaChannels || major < 8) return StripPrecision::kFma;
  const int mode = get_switch(Switch::kCudaTf32);
  const bool tf32 = mode == 2 || (mode == 0 && get_switch(Switch::kTorchAllowTf32) == 1);
  return tf32 ? StripPrecision::kTf32 : StripPrecision::kTf32x3;
}

// Launches forward_strip_kernel for the plan's precision and ring size, with the shared memory
// the plan asks for (above 48 KiB by opt-in).
template <typename scalar_t>
void launch_strip_kernel(const scalar_t* x, const float* cond, const scalar_t* bias, scalar_t* y,
                         const Conv1dGeometry& g, const StripPlan& plan, cudaStream_t stream) {
  const auto launch = [&](auto kernel) {
    const int64_t bytes = plan.shared_floats * 4;
    allow_dynamic_shared_memory(kernel);  // plans stay within strip_shared_limit()
    // one block per (batch row, strip, filter group); the kernel's block loop covers any rest
    kernel<<<std::min<int64_t>(g.batch * plan.strips * plan.groups, int64_t(1) << 30), plan.threads, bytes,
             stream>>>(x, cond, bias, y, g, plan);
    WS_CUDA_LAUNCH_CHECK();
  };
  if (plan.window) {  // single-channel inputs: the register-window walk (line step 1 or 2)
    with_constant<1, 2>(int(plan.line_step), [&](auto ls) { launch(forward_window_kernel<scalar_t, decltype(ls)::value>); });
    return;
  }
  with_constant<0, 1, 2>(plan.precision, [&](auto precision) {
    with_constant<4, 8, 16>(strip_ring_template(plan.ring), [&](auto kt) {
      launch(forward_strip_kernel<scalar_t, decltype(kt)::value, decltype(precision)::value>);
    });
  });
}

// The fused strip backward (ws_conv1d_strip_adjoint_kernel.cuh), forced by the cuda_adjoint switch
// set to fused (2): grad_input and grad_condensed in two launches, grad_bias by ATen's sum.
// The fused backward's plan (rows = 0: it does not fit the shape, or the dtype is float64).
inline AdjointPlan fused_backward_plan(const Conv1dGeometry& g, const Tensor& x) {
  if (x.scalar_type() == ScalarType::Double) return AdjointPlan{};
  return choose_adjoint_plan(g, strip_precision(g, x.get_device_index()), strip_shared_limit(), 2 * multiprocessors());
}

inline std::tuple<Tensor, Tensor, Tensor> fused_backward_cuda(const Tensor& gy, const Tensor& x, const Tensor& cond,
                                                       const Conv1dGeometry& g, const AdjointPlan& plan,
                                                       const std::vector<bool>& output_mask) {
  const auto empty = [&] { return torch::stable::new_empty(x, {0}); };
  if (gy.numel() == 0) {  // an empty batch (or no outputs): zero gradients, whatever the plan
    Tensor grad_input = output_mask[0] ? torch::stable::new_zeros(x, x.sizes()) : empty();
    Tensor grad_condensed = output_mask[1] ? torch::stable::new_zeros(x, {g.condensed_channels, g.condensed_len}) : empty();
    Tensor grad_bias = output_mask[2] ? torch::stable::new_zeros(x, {g.out_channels}) : empty();
    return {grad_input, grad_condensed, grad_bias};
  }
  WS_CHECK(x.scalar_type() != ScalarType::Double,
           "wsnet_ext: the cuda_adjoint switch forces the 'fused' backward, which takes float32, float16 or "
           "bfloat16, got float64; does not fit");
  WS_CHECK(plan.rows > 0, "wsnet_ext: the cuda_adjoint switch forces the 'fused' backward, which does not fit "
           "this shape (kernel ", g.kernel_size, ", sample stride ", g.sample_stride, ", stride ", g.stride,
           ", ", g.out_channels, " filters: ring K = ceil(L / (dn*S)) <= 8 and <= 768 lines per frame); does not fit");
  Tensor grad_input = output_mask[0] ? torch::stable::new_empty(x, x.sizes()) : empty();  // every element written
  Tensor grad_condensed = output_mask[1] ? torch::stable::new_empty(x, {g.condensed_channels, g.condensed_len}) : empty();
  Tensor grad_bias = output_mask[2] ? torch::stable::new_zeros(x, {g.out_channels}) : empty();
  const cudaStream_t stream = current_cuda_stream(x.get_device_index());
  // one (Mc x Lc) slice per block (each block's pointer stays inside, even when unused)
  Tensor partials = torch::stable::new_zeros(cond, {plan.grid, g.condensed_channels, g.condensed_len});
  WS_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ws_conv1d_fused_backward_cuda", [&] {
    if constexpr (!std::is_same_v<scalar_t, double>) {
      scalar_t* gx = output_mask[0] ? grad_input.mutable_data_ptr<scalar_t>() : nullptr;
      const auto launch = [&](auto kernel) {
        const int64_t bytes = plan.shared_floats * 4;
        allow_dynamic_shared_memory(kernel);  // plans stay within strip_shared_limit()
        kernel<<<plan.grid, plan.threads, bytes, stream>>>(gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                                           cond.const_data_ptr<float>(), gx,
                                                           partials.mutable_data_ptr<float>(), g, plan,
                                                           bool(output_mask[0]), bool(output_mask[1]));
        WS_CUDA_LAUNCH_CHECK();
      };
      with_constant<0, 1, 2>(plan.precision, [&](auto precision) {
        with_constant<4, 8>(adjoint_ring_template(plan.ring), [&](auto kt) {
          launch(adjoint_strip_kernel<scalar_t, decltype(kt)::value, decltype(precision)::value>);
        });
      });
      if (output_mask[1]) {
        const int64_t slice = g.condensed_channels * g.condensed_len;
        adjoint_reduce_kernel<scalar_t><<<grid_for(slice), kThreads, 0, stream>>>(
            partials.const_data_ptr<float>(), grad_condensed.mutable_data_ptr<scalar_t>(), slice, plan.grid);
        WS_CUDA_LAUNCH_CHECK();
      }
    }
  });
  if (output_mask[2]) {  // ATen's reduction: fixed order, no atomics
    const std::vector<int64_t> dims{0, 2};
    torch::stable::copy_(grad_bias, torch::stable::sum(gy, dims, false, ScalarType::Float));
  }
  return {grad_input, grad_condensed, grad_bias};
}
}  // namespace wsnet
