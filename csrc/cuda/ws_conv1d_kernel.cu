// WSConv1d on CUDA by the integral-image method (docs/design.md §2). Written to be plainly right
// first: 64-bit offsets into every tensor and grid-stride loops with 64-bit indices; the line, stream
// and adjoint kernels keep in-tile rows, columns and option products in int, and run only where
// narrow_ints_fit (ws_conv1d_geometry.h) says those fit; bounds checks, the current stream, and a
// launch check after every kernel.
//
// Forward: fold_kernel writes f (B, Mc, Tp); forward_tile_kernel gives each block a tile of
// (outputs x filters), computes its P tile in shared memory (§2.2), prefix-sums it along the
// sampling lines (§2.3) and gathers one difference per output (§2.4). P never reaches global
// memory. forward_stream_kernel (ws_conv1d_stream_kernel.cuh) is the usual path: it sweeps the
// condensed columns over a run of rows and keeps only two columns of the prefix. Where its rows do
// not fit, the tile kernel runs, and where even one tile does not fit, forward_direct_kernel. A tile
// whose P holds NaN or Inf computes its outputs by the definition (see definition_output in ws_conv1d_geometry.h).
// Backward: per chunk of the batch, adjoint_stream_kernel (ws_conv1d_adjoint_kernel.cuh) writes dP
// (§2 backward: each point's covering segments, as a running box sum along the lines), then
// grad_condensed = f^T dP and df = condensed dP^T run as batched GEMMs (aten::matmul through the
// stable dispatcher call, so cuBLAS), one aten::copy_ per channel repeat writes df into
// grad_input, and grad_bias is aten::sum (deterministic).

#include <algorithm>
#include <string>

#include "../ws_conv1d_op_args.h"
#include "../ws_switches.h"
#include "ws_cuda_stable.h"
#include "ws_cuda_shared_limit.h"
#include "ws_conv1d_adjoint_kernel.cuh"
#include "ws_conv1d_lines_kernel.cuh"
#include "ws_conv1d_stream_kernel.cuh"
#include "ws_conv1d_strip_adjoint_kernel.cuh"
#include "ws_conv1d_strip_kernel.cuh"

namespace wsnet {
namespace {

constexpr int kThreads = 256;
// Dynamic shared memory of a forward tile: the 48 KiB every GPU gives without opt-in, less room
// for the kernel's static shared variables (the 48 KiB bound counts both).
constexpr int64_t kSharedBytes = 48 * 1024 - 256;
constexpr int64_t kAdjointChunkBytes = int64_t(256) << 20;  // dP chunk of the backward

int64_t multiprocessors() {
  int device = 0, count = 0;
  WS_CUDA_CHECK(cudaGetDevice(&device));
  WS_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

// Shared memory per block for the strip kernel: what the card gives by opt-in, capped so that two
// blocks fit on a multiprocessor (the kernel's __launch_bounds__ asks for two).
int64_t strip_shared_limit() {
  int device = 0, optin = 0, per_sm = 0;
  WS_CUDA_CHECK(cudaGetDevice(&device));
  WS_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  WS_CUDA_CHECK(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
  return std::min<int64_t>(optin, per_sm / 2 - 1024);
}

int64_t grid_for(int64_t work) {
  return std::max<int64_t>(1, std::min<int64_t>((work + kThreads - 1) / kThreads, int64_t(1) << 20));
}

#define WS_GRID_STRIDE_LOOP(i, n)                                               \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += int64_t(blockDim.x) * gridDim.x)

// f[b, j, u] = sum_c xp[b, c*Mc + j, u] for batches [b0, b0 + bc)  (§2.1)
template <typename scalar_t, typename acc_t>
__global__ void fold_kernel(const scalar_t* __restrict__ x, acc_t* __restrict__ f,
                            Conv1dGeometry g, int64_t b0, int64_t bc) {
  const int64_t total = bc * g.condensed_channels * g.padded_len;
  WS_GRID_STRIDE_LOOP(idx, total) {
    const int64_t u = idx % g.padded_len;
    const int64_t j = (idx / g.padded_len) % g.condensed_channels;
    const int64_t b = b0 + idx / (g.padded_len * g.condensed_channels);
    f[idx] = folded_input<acc_t>(x + b * g.in_channels * g.length, g, j, g.input_time(u));
  }
}

struct ForwardTiles {
  int64_t outputs;  // outputs t per tile
  int64_t filters;  // filters n per tile
  int64_t rows;     // (outputs - 1) * s + (L - 1) * d + 1
  int64_t cols;     // (filters - 1) * S + L
  int64_t t_tiles, n_tiles;
};

// The largest tile (up to 64 outputs x 32 filters) whose P fits in shared memory; outputs = 0
// when not even one output of one filter fits.
ForwardTiles choose_forward_tiles(const Conv1dGeometry& g, int64_t acc_bytes) {
  ForwardTiles tiles{};
  int64_t outputs = std::min<int64_t>(g.out_len, 64), filters = std::min<int64_t>(g.out_channels, 32);
  while (true) {
    const int64_t rows = (outputs - 1) * g.stride + g.halo_rows() + 1;
    const int64_t cols = (filters - 1) * g.sample_stride + g.kernel_size;
    if (rows * cols * acc_bytes <= kSharedBytes) {
      tiles = {outputs, filters, rows, cols, (g.out_len + outputs - 1) / outputs,
               (g.out_channels + filters - 1) / filters};
      return tiles;
    }
    if (outputs == 1 && filters == 1) return tiles;
    if (filters == 1 || (outputs > 1 && rows >= cols)) outputs = (outputs + 1) / 2;
    else filters = (filters + 1) / 2;
  }
}

template <typename scalar_t, typename acc_t>
__global__ void forward_tile_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ f,
                                    const acc_t* __restrict__ cond,
                                    const scalar_t* __restrict__ bias, scalar_t* __restrict__ y,
                                    Conv1dGeometry g, ForwardTiles tiles) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  acc_t* q = reinterpret_cast<acc_t*>(shared_raw);  // (rows x cols): P, then its line prefix
  const int64_t rows = tiles.rows, cols = tiles.cols, d = g.dilation;
  const int64_t total_tiles = g.batch * tiles.n_tiles * tiles.t_tiles;
  for (int64_t tile = blockIdx.x; tile < total_tiles; tile += gridDim.x) {  // uniform per block
    const int64_t t0 = (tile % tiles.t_tiles) * tiles.outputs;
    const int64_t n0 = ((tile / tiles.t_tiles) % tiles.n_tiles) * tiles.filters;
    const int64_t b = tile / (tiles.t_tiles * tiles.n_tiles);
    const int64_t row0 = g.first_row(t0), col0 = g.first_col(n0);
    const acc_t* f_b = f + b * g.condensed_channels * g.padded_len;
    // inner_product (§2.2); rows past the input's end (last tile) hold zeros
    int nonfinite = 0;  // this thread wrote NaN or Inf
    for (int64_t k = threadIdx.x; k < rows * cols; k += blockDim.x) {
      const int64_t u = row0 + k / cols, v = col0 + k % cols;
      acc_t sum = 0;
      if (u < g.padded_len && v < g.condensed_len) {
        for (int64_t j = 0; j < g.condensed_channels; ++j) {
          sum += f_b[j * g.padded_len + u] * cond[j * g.condensed_len + v];
        }
      }
      q[k] = sum;
      nonfinite |= !isfinite(sum);
    }
    nonfinite = __syncthreads_or(nonfinite);  // barrier, and: does the tile's P hold NaN or Inf?
    const int64_t t_count = std::min(tiles.outputs, g.out_len - t0);
    const int64_t n_count = std::min(tiles.filters, g.out_channels - n0);
    if (nonfinite) {  // uniform per block
      for (int64_t k = threadIdx.x; k < t_count * n_count; k += blockDim.x) {
        const int64_t n = n0 + k / t_count, t = t0 + k % t_count;
        y[(b * g.out_channels + n) * g.out_len + t] =
            static_cast<scalar_t>(cuda_definition_output(x, cond, bias, g, b, n, t));
      }
      __syncthreads();
      continue;
    }
    // line_prefix_sum (§2.3): one thread per line; lines start in the top d rows or column 0
    const int64_t top_starts = std::min(d, rows) * cols;
    const int64_t lines = top_starts + std::max<int64_t>(rows - d, 0);
    for (int64_t k = threadIdx.x; k < lines; k += blockDim.x) {
      int64_t r = k < top_starts ? k / cols : d + (k - top_starts);
      int64_t c = k < top_starts ? k % cols : 0;
      acc_t run = 0;
      for (; r < rows && c < cols; r += d, ++c) {
        run += q[r * cols + c];
        q[r * cols + c] = run;
      }
    }
    __syncthreads();
    // gather (§2.4)
    for (int64_t k = threadIdx.x; k < t_count * n_count; k += blockDim.x) {
      const int64_t n = n0 + k / t_count, t = t0 + k % t_count;
      acc_t out = segment_sum(q, cols, g, n, t, row0, col0);
      if (bias != nullptr) out += static_cast<acc_t>(bias[n]);
      y[(b * g.out_channels + n) * g.out_len + t] = static_cast<scalar_t>(out);
    }
    __syncthreads();  // q is rewritten by the next tile
  }
}

// The fallback when not even one output's P fits in shared memory: every output by the
// definition, O(L * M) each.
template <typename scalar_t, typename acc_t>
__global__ void forward_direct_kernel(const scalar_t* __restrict__ x, const acc_t* __restrict__ cond,
                                      const scalar_t* __restrict__ bias, scalar_t* __restrict__ y,
                                      Conv1dGeometry g) {
  const int64_t total = g.batch * g.out_channels * g.out_len;
  WS_GRID_STRIDE_LOOP(idx, total) {
    const int64_t t = idx % g.out_len;
    const int64_t n = (idx / g.out_len) % g.out_channels;
    const int64_t b = idx / (g.out_len * g.out_channels);
    y[idx] = static_cast<scalar_t>(cuda_definition_output(x, cond, bias, g, b, n, t));
  }
}

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

// The strip kernel's precision: TF32 when the cuda_tf32 switch says so, or when it follows torch
// and torch.backends.cudnn.allow_tf32 is set; float32-faithful (3xTF32) otherwise; CUDA-core FMAs
// when Mc < 8 (tensor cores would be mostly padding) or below sm_80 (no TF32 mma.sync).
StripPrecision strip_precision(const Conv1dGeometry& g, int device) {
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
    if (plan.line_step == 1) launch(forward_window_kernel<scalar_t, 1>);
    else launch(forward_window_kernel<scalar_t, 2>);
    return;
  }
  const auto with_ring = [&](auto precision_tag) {
    constexpr int kPrecision = decltype(precision_tag)::value;
    const int kt = strip_ring_template(plan.ring);
    if (kt == 4) launch(forward_strip_kernel<scalar_t, 4, kPrecision>);
    else if (kt == 8) launch(forward_strip_kernel<scalar_t, 8, kPrecision>);
    else launch(forward_strip_kernel<scalar_t, 16, kPrecision>);
  };
  if (plan.precision == int(StripPrecision::kFma)) with_ring(std::integral_constant<int, 0>{});
  else if (plan.precision == int(StripPrecision::kTf32)) with_ring(std::integral_constant<int, 1>{});
  else with_ring(std::integral_constant<int, 2>{});
}

Tensor ws_conv1d_forward_cuda(const Tensor& input, const Tensor& condensed,
                              const std::optional<Tensor>& bias, int64_t kernel_size,
                              int64_t sample_stride, int64_t channel_repeat, int64_t stride,
                              IntArray padding, int64_t dilation) {
  const Conv1dGeometry g = make_conv1d_geometry(input, condensed, kernel_size, sample_stride,
                                                channel_repeat, stride, padding, dilation);
  check_conv1d_bias(bias, input, g);
  const DeviceGuard guard(input.get_device_index());
  const Tensor x = as_contiguous(input);
  const Tensor cond =
      as_contiguous(to_dtype(condensed, acc_scalar_type(input.scalar_type())));
  const std::optional<Tensor> bias_c =
      bias.has_value() ? std::optional<Tensor>(as_contiguous(*bias)) : std::nullopt;
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
    } else if (kernel == ForwardKernel::kLines) {  // fold, P, prefix and gather in one pass, no barriers
      forward_lines_kernel<scalar_t, acc_t>
          <<<std::min<int64_t>(g.batch * line_tiles.t_tiles, int64_t(1) << 30), line_tiles.threads,
             line_tiles.shared_bytes, stream>>>(
              x.const_data_ptr<scalar_t>(), cond.const_data_ptr<acc_t>(), bias_ptr,
              y.mutable_data_ptr<scalar_t>(), g, line_tiles);
      WS_CUDA_LAUNCH_CHECK();
    } else if (kernel == ForwardKernel::kStream) {  // the same, one row per thread
      forward_stream_kernel<scalar_t, acc_t>
          <<<std::min<int64_t>(g.batch * stream_tiles.t_tiles, int64_t(1) << 30), stream_tiles.threads,
             stream_tiles.shared_bytes, stream>>>(
              x.const_data_ptr<scalar_t>(), cond.const_data_ptr<acc_t>(), bias_ptr,
              y.mutable_data_ptr<scalar_t>(), g, stream_tiles);
      WS_CUDA_LAUNCH_CHECK();
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

// The fused strip backward (ws_conv1d_strip_adjoint_kernel.cuh), forced by the cuda_adjoint switch
// set to fused (2): grad_input and grad_condensed in two launches, grad_bias by ATen's sum.
// The fused backward's plan (rows = 0: it does not fit the shape, or the dtype is float64).
AdjointPlan fused_backward_plan(const Conv1dGeometry& g, const Tensor& x) {
  if (x.scalar_type() == ScalarType::Double) return AdjointPlan{};
  return choose_adjoint_plan(g, strip_precision(g, x.get_device_index()), strip_shared_limit(), 2 * multiprocessors());
}

std::tuple<Tensor, Tensor, Tensor> fused_backward_cuda(const Tensor& gy, const Tensor& x, const Tensor& cond,
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
      const auto with_ring = [&](auto precision_tag) {
        constexpr int kPrecision = decltype(precision_tag)::value;
        if (plan.ring <= 4) launch(adjoint_strip_kernel<scalar_t, 4, kPrecision>);
        else launch(adjoint_strip_kernel<scalar_t, 8, kPrecision>);
      };
      if (plan.precision == int(StripPrecision::kFma)) with_ring(std::integral_constant<int, 0>{});
      else if (plan.precision == int(StripPrecision::kTf32)) with_ring(std::integral_constant<int, 1>{});
      else with_ring(std::integral_constant<int, 2>{});
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

std::tuple<Tensor, Tensor, Tensor> ws_conv1d_backward_cuda(
    const Tensor& grad_output, const Tensor& input, const Tensor& condensed, int64_t kernel_size,
    int64_t sample_stride, int64_t channel_repeat, int64_t stride, IntArray padding,
    int64_t dilation, std::vector<bool> output_mask) {
  const Conv1dGeometry g = make_conv1d_backward_geometry(grad_output, input, condensed, kernel_size,
                                                         sample_stride, channel_repeat, stride,
                                                         padding, dilation, output_mask);
  const DeviceGuard guard(input.get_device_index());
  const Tensor gy = as_contiguous(grad_output), x = as_contiguous(input);
  const ScalarType acc = acc_scalar_type(input.scalar_type());
  const Tensor cond = as_contiguous(to_dtype(condensed, acc));
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
  m.impl("ws_conv1d_forward", TORCH_BOX(&ws_conv1d_forward_cuda));
  m.impl("ws_conv1d_backward", TORCH_BOX(&ws_conv1d_backward_cuda));
}

}  // namespace wsnet
