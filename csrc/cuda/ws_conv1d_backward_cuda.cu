// WSConv1d's backward on CUDA (docs/design.md §2, backward). Per chunk of the batch,
// adjoint_stream_kernel (tiles/cuda/ws_conv1d_adjoint_kernel.cuh) writes dP (each point's covering
// segments, as a running box sum along the lines), then grad_condensed = f^T dP and
// df = condensed dP^T run as batched GEMMs (aten::matmul through the stable dispatcher call, so
// cuBLAS), one aten::copy_ per channel repeat writes df into grad_input, and grad_bias is aten::sum
// (deterministic). The fused strip backward (strips/) runs when the cuda_adjoint switch asks.
#include <algorithm>
#include <vector>

#include "common/ws_conv1d_op_args.h"
#include "common/ws_switches.h"
#include "cuda/ws_cuda_launch.h"
#include "cuda/ws_cuda_stable.h"
#include "strips/cuda/ws_conv1d_strip_launch.cuh"
#include "tiles/cuda/ws_conv1d_adjoint_kernel.cuh"
#include "tiles/cuda/ws_conv1d_tile_kernels.cuh"

namespace wsnet {
namespace {

constexpr int64_t kAdjointChunkBytes = int64_t(256) << 20;  // dP chunk of the backward

std::tuple<Tensor, Tensor, Tensor> ws_conv1d_backward_cuda(
    const Tensor& grad_output, const Tensor& input, const Tensor& condensed, int64_t kernel_size,
    int64_t sample_stride, int64_t channel_repeat, int64_t stride, IntArray padding,
    int64_t dilation, std::vector<bool> output_mask) {
  const DeviceGuard guard(input.get_device_index());
  const ScalarType acc = acc_scalar_type(input.scalar_type());
  const BackwardOperands op = backward_operands(grad_output, input, condensed, kernel_size, sample_stride,
                                                channel_repeat, stride, padding, dilation, output_mask, acc);
  const Conv1dGeometry& g = op.g;
  const Tensor &gy = op.gy, &x = op.x, &cond = op.cond;
  const int adjoint_switch = get_switch(Switch::kCudaAdjoint);  // 2 fused, 3 prefer_fused
  if (adjoint_switch == 2 || adjoint_switch == 3) {
    const AdjointPlan plan = fused_backward_plan(g, x);
    if (adjoint_switch == 2 || plan.rows > 0) return fused_backward_cuda(gy, x, cond, g, plan, output_mask);
  }
  const auto empty = [&] { return torch::stable::new_empty(x, {0}); };
  const std::vector<int64_t> bias_shape{g.out_channels};
  Tensor grad_input = output_mask[0] ? torch::stable::new_empty(x, x.sizes()) : empty();  // all written below
  Tensor grad_bias = output_mask[2] ? torch::stable::new_zeros(x, bias_shape) : empty();
  const cudaStream_t stream = current_cuda_stream(input.get_device_index());
  const int64_t acc_bytes = acc == ScalarType::Double ? 8 : 4;
  const int64_t per_batch = g.padded_len * g.condensed_len * acc_bytes;
  const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(g.batch, kAdjointChunkBytes / per_batch));
  const int64_t chunks = g.batch == 0 ? 0 : (g.batch + chunk - 1) / chunk;
  // grad_condensed of each chunk, added in chunk order at the end (deterministic)
  Tensor grad_condensed_parts =
      output_mask[1] ? torch::stable::new_zeros(cond, {std::max<int64_t>(chunks, 1), g.condensed_channels,
                                                       g.condensed_len})
                     : empty();
  if (gy.numel() > 0 && (output_mask[0] || output_mask[1])) {
    // the cuda_adjoint switch set to gather (1) forces the pointwise kernel, which fits every shape
    const AdjointTiles adjoint_tiles =
        get_switch(Switch::kCudaAdjoint) == 1 ? AdjointTiles{} : choose_adjoint_tiles(g);
    for (int64_t k = 0; k < chunks; ++k) {
      const int64_t b0 = k * chunk, bc = std::min(chunk, g.batch - b0);
      Tensor dpt = torch::stable::new_empty(cond, {bc, g.condensed_len, g.padded_len});  // dP transposed
      Tensor f = torch::stable::new_empty(cond, {bc, g.condensed_channels, g.padded_len});
      WS_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ws_conv1d_backward_cuda", [&] {
        using acc_t = acc_type<scalar_t>;
        if (adjoint_tiles.threads > 0) {
          adjoint_stream_kernel<scalar_t, acc_t>
              <<<std::min<int64_t>(bc * adjoint_tiles.u_tiles, int64_t(1) << 30), adjoint_tiles.threads,
                 2 * adjoint_tiles.threads * sizeof(acc_t), stream>>>(
                  gy.const_data_ptr<scalar_t>(), dpt.mutable_data_ptr<acc_t>(), g, adjoint_tiles, b0, bc);
        } else {
          adjoint_gather_kernel<scalar_t, acc_t><<<grid_for(dpt.numel()), kThreads, 0, stream>>>(
              gy.const_data_ptr<scalar_t>(), dpt.mutable_data_ptr<acc_t>(), g, b0, bc);
        }
        WS_CUDA_LAUNCH_CHECK();
        if (output_mask[1]) {
          fold_kernel<scalar_t, acc_t><<<grid_for(f.numel()), kThreads, 0, stream>>>(
              x.const_data_ptr<scalar_t>(), f.mutable_data_ptr<acc_t>(), g, b0, bc);
          WS_CUDA_LAUNCH_CHECK();
        }
      });
      if (output_mask[1]) {  // f^T dP, summed over the chunk's batch rows
        Tensor part = torch::stable::select(grad_condensed_parts, 0, k);
        const std::vector<int64_t> batch_dim{0};
        torch::stable::sum_out(part, torch::stable::matmul(f, torch::stable::transpose(dpt, 1, 2)),
                               batch_dim);
      }
      if (output_mask[0]) {
        // df^T = condensed dP^T: (Mc, Lc) x (bc, Lc, Tp), straight from dpt's layout; its unpadded
        // rows go to every channel repeat
        Tensor dft = torch::stable::matmul(cond, dpt);
        // grad_input[b0 + b, c*Mc + j, i] = df^T[b, j, pad_left + i] for every repeat c: one ATen
        // copy per repeat (casting to the input's dtype), as the pre-stable code's expand + copy did
        Tensor unpadded = torch::stable::narrow(dft, 2, g.pad_left, g.length);
        Tensor rows = torch::stable::narrow(grad_input, 0, b0, bc);
        for (int64_t c = 0; c < channel_repeat; ++c) {
          Tensor repeat = torch::stable::narrow(rows, 1, c * g.condensed_channels, g.condensed_channels);
          torch::stable::copy_(repeat, unpadded);
        }
      }
    }
  } else if (output_mask[0]) {
    torch::stable::zero_(grad_input);  // no outputs: zero gradients
  }
  if (gy.numel() > 0 && output_mask[2]) {  // ATen's reduction: fixed order, no atomics
    const std::vector<int64_t> dims{0, 2};
    torch::stable::copy_(grad_bias, torch::stable::sum(gy, dims, false, acc));
  }
  Tensor grad_condensed = empty();
  if (output_mask[1]) {
    const std::vector<int64_t> chunk_dim{0};
    grad_condensed = to_dtype(torch::stable::sum(grad_condensed_parts, chunk_dim), input.scalar_type());
  }
  return {grad_input, grad_condensed, grad_bias};
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(wsnet_ext, CUDA, m) {
  m.impl("ws_conv1d_backward", TORCH_BOX(&ws_conv1d_backward_cuda));
}

}  // namespace wsnet
