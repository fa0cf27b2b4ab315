// WSConv1d's forward on CUDA by the integral-image method (docs/design.md §2): the op, and the
// choice of kernel. Written to be plainly right first: 64-bit offsets into every tensor and
// grid-stride loops with 64-bit indices; the line, stream and adjoint kernels keep in-tile rows,
// columns and option products in int, and run only where narrow_ints_fit (ws_conv1d_geometry.h)
// says those fit; bounds checks, the current stream, and a launch check after every kernel.
//
// The kernels, one family per folder: forward_stream_kernel (tiles/cuda/ws_conv1d_stream_kernel.cuh)
// is the usual path: it sweeps the condensed columns over a run of rows and keeps only two columns
// of the prefix; forward_lines_kernel the same with a line per thread. Where their rows do not fit,
// the P-tile kernel runs, and where even one tile does not fit, forward_direct_kernel
// (tiles/cuda/ws_conv1d_tile_kernels.cuh). The strip kernels (strips/) are opt-in.
#include <algorithm>
#include <string>

#include "common/ws_conv1d_op_args.h"
#include "common/ws_switches.h"
#include "cuda/ws_cuda_launch.h"
#include "cuda/ws_cuda_stable.h"
#include "strips/cuda/ws_conv1d_strip_launch.cuh"
#include "tiles/cuda/ws_conv1d_lines_kernel.cuh"
#include "tiles/cuda/ws_conv1d_stream_kernel.cuh"
#include "tiles/cuda/ws_conv1d_tile_kernels.cuh"

namespace wsnet {
namespace {

// kPreferStrips: the strip kernel where it fits the shape, else the pick by shape (for whole models)
enum class ForwardKernel { kAuto = 0, kLines = 1, kStream = 2, kTiles = 3, kDirect = 4, kStrips = 5, kPreferStrips = 6 };

const char* forward_kernel_name(ForwardKernel k) {
  switch (k) {
    case ForwardKernel::kLines: return "lines";
    case ForwardKernel::kStream: return "stream";
    case ForwardKernel::kTiles: return "tiles";
    case ForwardKernel::kDirect: return "direct";
    case ForwardKernel::kStrips: return "strips";
    default: return "auto";
  }
}

// The line and stream kernels parallelize over rows only: they need enough of them (a block per
// multiprocessor at least, tiles not mostly halo). Short inputs go to the P tiles, which also split
// the filters. The cuda_forward switch (ws_switches.h) forces one kernel: if the shape does not fit
// it, that is an error, never a silent fallback (tests force each kernel and must know it ran).
ForwardKernel pick_forward_kernel(const Conv1dGeometry& g, const LineTiles& lines,
                                  const StreamTiles& streamed, const ForwardTiles& tiles,
                                  const StripPlan& strips, int64_t sms) {
  const auto forced = static_cast<ForwardKernel>(get_switch(Switch::kCudaForward));
  if (forced == ForwardKernel::kPreferStrips && strips.outputs > 0) return ForwardKernel::kStrips;
  if (forced != ForwardKernel::kAuto && forced != ForwardKernel::kPreferStrips) {
    const bool fits = forced == ForwardKernel::kDirect || (forced == ForwardKernel::kLines && lines.outputs > 0) ||
                      (forced == ForwardKernel::kStream && streamed.outputs > 0) ||
                      (forced == ForwardKernel::kTiles && tiles.outputs > 0) ||
                      (forced == ForwardKernel::kStrips && strips.outputs > 0);
    WS_CHECK(fits, "wsnet_ext: the cuda_forward switch forces the '", forward_kernel_name(forced),
             "' kernel, which does not fit this shape (", g.in_channels, " input channels, length ",
             g.length, ", kernel ", g.kernel_size, ", dilation ", g.dilation,
             ", condensed channels ", g.condensed_channels, ") in shared memory (the strips kernel also needs "
             "float32/float16/bfloat16, sm_80+ when Mc >= 8, K = ceil(L / (dn*S)) <= 16 open segments "
             "per line and <= 1024 lines per strip); does not fit");
    return forced;
  }
  if (lines.outputs > 0 && lines.rows >= 64 && g.batch * lines.t_tiles >= sms) return ForwardKernel::kLines;
  if (streamed.outputs > 0 && streamed.rows >= 64 && g.batch * streamed.t_tiles >= sms) return ForwardKernel::kStream;
  if (tiles.outputs > 0) return ForwardKernel::kTiles;
  if (lines.outputs > 0) return ForwardKernel::kLines;
  if (streamed.outputs > 0) return ForwardKernel::kStream;
  return ForwardKernel::kDirect;
}

Tensor ws_conv1d_forward_cuda(const Tensor& input, const Tensor& condensed,
                              const std::optional<Tensor>& bias, int64_t kernel_size,
                              int64_t sample_stride, int64_t channel_repeat, int64_t stride,
                              IntArray padding, int64_t dilation) {
  const DeviceGuard guard(input.get_device_index());
  const ForwardOperands op = forward_operands(input, condensed, bias, kernel_size, sample_stride, channel_repeat,
                                              stride, padding, dilation, acc_scalar_type(input.scalar_type()));
  const Conv1dGeometry& g = op.g;
  const Tensor &x = op.x, &cond = op.cond;
  const std::optional<Tensor>& bias_c = op.bias;
  Tensor y = torch::stable::new_empty(x, {g.batch, g.out_channels, g.out_len});
  if (y.numel() == 0) return y;
  const cudaStream_t stream = current_cuda_stream(input.get_device_index());
  WS_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ws_conv1d_forward_cuda", [&] {
    using acc_t = acc_type<scalar_t>;
    const scalar_t* bias_ptr = bias_c.has_value() ? bias_c->const_data_ptr<scalar_t>() : nullptr;
    const int64_t sms = multiprocessors();
    const LineTiles line_tiles = choose_line_tiles(g, sizeof(acc_t), kSharedBytes, sms);
    const StreamTiles stream_tiles = choose_stream_tiles(g, sizeof(acc_t), kSharedBytes, sms);
    const ForwardTiles tiles = choose_forward_tiles(g, sizeof(acc_t));
    StripPlan strips{};
    if constexpr (!std::is_same_v<scalar_t, double>) {  // float32 accumulation: not for float64
      strips = choose_forward_plan(g, strip_precision(g, input.get_device_index()), strip_shared_limit(), sms);
    }
    const ForwardKernel kernel = pick_forward_kernel(g, line_tiles, stream_tiles, tiles, strips, sms);
    if (kernel == ForwardKernel::kStrips) {
      if constexpr (!std::is_same_v<scalar_t, double>) {
        launch_strip_kernel<scalar_t>(x.const_data_ptr<scalar_t>(), cond.const_data_ptr<float>(), bias_ptr,
                                      y.mutable_data_ptr<scalar_t>(), g, strips, stream);
      }
    } else if (kernel == ForwardKernel::kLines || kernel == ForwardKernel::kStream) {
      // fold, P, prefix and gather in one pass, no barriers: a line per thread, or a row per thread
      const auto launch_rows = [&](auto row_kernel, const auto& rows) {
        row_kernel<<<std::min<int64_t>(g.batch * rows.t_tiles, int64_t(1) << 30), rows.threads, rows.shared_bytes,
                     stream>>>(x.const_data_ptr<scalar_t>(), cond.const_data_ptr<acc_t>(), bias_ptr,
                               y.mutable_data_ptr<scalar_t>(), g, rows);
        WS_CUDA_LAUNCH_CHECK();
      };
      if (kernel == ForwardKernel::kLines) launch_rows(forward_lines_kernel<scalar_t, acc_t>, line_tiles);
      else launch_rows(forward_stream_kernel<scalar_t, acc_t>, stream_tiles);
    } else if (kernel == ForwardKernel::kTiles) {  // (outputs x filters) tiles of P in shared memory
      Tensor f = torch::stable::new_empty(cond, {g.batch, g.condensed_channels, g.padded_len});
      fold_kernel<scalar_t, acc_t><<<grid_for(f.numel()), kThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), f.mutable_data_ptr<acc_t>(), g, 0, g.batch);
      WS_CUDA_LAUNCH_CHECK();
      const int64_t total_tiles = g.batch * tiles.t_tiles * tiles.n_tiles;
      const int64_t blocks = std::min<int64_t>(total_tiles, int64_t(1) << 30);
      forward_tile_kernel<scalar_t, acc_t>
          <<<blocks, kThreads, tiles.rows * tiles.cols * sizeof(acc_t), stream>>>(
              x.const_data_ptr<scalar_t>(), f.const_data_ptr<acc_t>(), cond.const_data_ptr<acc_t>(),
              bias_ptr, y.mutable_data_ptr<scalar_t>(), g, tiles);
      WS_CUDA_LAUNCH_CHECK();
    } else {
      forward_direct_kernel<scalar_t, acc_t><<<grid_for(y.numel()), kThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), cond.const_data_ptr<acc_t>(), bias_ptr,
          y.mutable_data_ptr<scalar_t>(), g);
      WS_CUDA_LAUNCH_CHECK();
    }
  });
  return y;
}
}  // namespace

STABLE_TORCH_LIBRARY_IMPL(wsnet_ext, CUDA, m) {
  m.impl("ws_conv1d_forward", TORCH_BOX(&ws_conv1d_forward_cuda));
}

}  // namespace wsnet
