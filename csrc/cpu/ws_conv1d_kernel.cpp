// WSConv1d on the CPU by the integral-image method (DESIGN.md §2).
//
// Forward, per tile of outputs (b, t0..t1) over its rows of the padded input:
//   fold (§2.1) -> inner_product (§2.2, P tile) -> line_prefix_sum (§2.3) -> gather (§2.4).
// Backward, per tile of input rows (b, u0..u1) plus a halo of (L-1)*d rows above:
//   scatter +gy / -gy at segment ends -> line_prefix_sum (= dP) -> grad_condensed += fold^T dP,
//   grad_input = dP condensed^T.
// Tiles depend only on the shapes, never on the thread count, and the partial sums of
// grad_condensed are added in a fixed order, so results are bitwise reproducible.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros_like.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "../ws_conv1d_op_args.h"
#include "ws_conv1d_tiles.h"

namespace wsnet {
namespace {

// fold[j][r] = sum_c x[c*Mc + j, row0 + r - pad_left]  (§2.1), zero in the padding.
template <typename scalar_t, typename acc_t>
void fold_channels(const scalar_t* x_b, const Conv1dGeometry& g, int64_t row0, int64_t rows,
                   acc_t* fold) {
  const int64_t mc = g.condensed_channels;
  std::fill(fold, fold + mc * rows, acc_t(0));
  const int64_t r_begin = std::max<int64_t>(0, g.pad_left - row0);
  const int64_t r_end = std::min<int64_t>(rows, g.pad_left + g.length - row0);
  if (r_begin >= r_end) return;
  for (int64_t m = 0; m < g.in_channels; ++m) {
    const scalar_t* src = x_b + m * g.length + (row0 - g.pad_left);
    acc_t* dst = fold + (m % mc) * rows;
    for (int64_t r = r_begin; r < r_end; ++r) dst[r] += static_cast<acc_t>(src[r]);
  }
}

// p[r][v] = sum_j fold[j][r] * condensed[j][v]  (§2.2) for one tile of rows.
template <typename acc_t>
void inner_product(const acc_t* fold, const acc_t* cond, int64_t rows, int64_t mc, int64_t lc,
                   acc_t* p) {
  for (int64_t r = 0; r < rows; ++r) {
    acc_t* p_row = p + r * lc;
    std::fill(p_row, p_row + lc, acc_t(0));
    for (int64_t j = 0; j < mc; ++j) {
      const acc_t a = fold[j * rows + r];
      const acc_t* c_row = cond + j * lc;
      for (int64_t v = 0; v < lc; ++v) p_row[v] += a * c_row[v];
    }
  }
}

template <typename scalar_t, typename acc_t>
std::vector<acc_t> to_acc(const scalar_t* src, int64_t n) {
  std::vector<acc_t> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<acc_t>(src[i]);
  return out;
}

template <typename scalar_t>
void forward_kernel(const scalar_t* x, const scalar_t* condensed, const scalar_t* bias,
                    scalar_t* y, const Conv1dGeometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t mc = g.condensed_channels, lc = g.condensed_len;
  const std::vector<acc_t> cond = to_acc<scalar_t, acc_t>(condensed, mc * lc);
  const TileSplit split = forward_tiles(g, sizeof(acc_t));
  at::parallel_for(0, g.batch * split.tiles_per_batch, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> fold, q;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / split.tiles_per_batch;
      const int64_t t0 = (item % split.tiles_per_batch) * split.tile;
      const int64_t t1 = std::min(t0 + split.tile, g.out_len);
      const int64_t row0 = g.first_row(t0);
      const int64_t rows = g.tile_rows(t0, t1);
      fold.resize(mc * rows);
      q.resize(rows * lc);
      fold_channels(x + b * g.in_channels * g.length, g, row0, rows, fold.data());
      inner_product(fold.data(), cond.data(), rows, mc, lc, q.data());
      line_prefix_sum(q.data(), rows, lc, g.dilation);
      // gather (§2.4): one segment difference per output.
      for (int64_t n = 0; n < g.out_channels; ++n) {
        const acc_t bias_n = bias ? static_cast<acc_t>(bias[n]) : acc_t(0);
        scalar_t* y_row = y + (b * g.out_channels + n) * g.out_len;
        for (int64_t t = t0; t < t1; ++t) {
          y_row[t] = static_cast<scalar_t>(segment_sum(q.data(), lc, g, n, t, row0, 0) + bias_n);
        }
      }
    }
  });
}

// dP for padded rows [u0, u0 + rows) of batch b, written to grid rows [halo, halo + rows).
// Every segment that reaches these rows starts at most `halo` rows above u0, so the grid starts
// there: +gy at each segment's first point, -gy just past its last, then the line prefix sum.
template <typename scalar_t, typename acc_t>
void adjoint_gather(const scalar_t* gy_b, const Conv1dGeometry& g, int64_t u0, int64_t rows,
                    std::vector<acc_t>& grid) {
  const int64_t lc = g.condensed_len, halo = g.halo_rows();
  const int64_t grid_rows = halo + rows, grid_row0 = u0 - halo;
  const int64_t end_offset = g.kernel_size * g.dilation;  // rows from a segment's start to past its end
  grid.assign(grid_rows * lc, acc_t(0));
  const int64_t first_start = std::max<int64_t>(0, grid_row0);
  const int64_t t_begin = (first_start + g.stride - 1) / g.stride;
  const int64_t t_end = std::min<int64_t>(g.out_len, (u0 + rows + g.stride - 1) / g.stride);
  for (int64_t n = 0; n < g.out_channels; ++n) {
    const scalar_t* gy_row = gy_b + n * g.out_len;
    const int64_t c = g.first_col(n), c_past = c + g.kernel_size;
    for (int64_t t = t_begin; t < t_end; ++t) {
      const acc_t v = static_cast<acc_t>(gy_row[t]);
      const int64_t r = g.first_row(t) - grid_row0;
      grid[r * lc + c] += v;
      if (r + end_offset < grid_rows && c_past < lc) grid[(r + end_offset) * lc + c_past] -= v;
    }
  }
  line_prefix_sum(grid.data(), grid_rows, lc, g.dilation);
}

template <typename scalar_t>
void backward_kernel(const scalar_t* gy, const scalar_t* x, const scalar_t* condensed,
                     scalar_t* grad_input, scalar_t* grad_condensed, const Conv1dGeometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t mc = g.condensed_channels, lc = g.condensed_len, halo = g.halo_rows();
  const std::vector<acc_t> cond = to_acc<scalar_t, acc_t>(condensed, mc * lc);
  const TileSplit split = backward_tiles(g, sizeof(acc_t));
  const int64_t tiles = g.batch * split.tiles_per_batch;
  const int64_t groups = reduction_groups(tiles);
  std::vector<acc_t> partial(grad_condensed ? groups * mc * lc : 0, acc_t(0));
  at::parallel_for(0, groups, 1, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> grid, fold;
    for (int64_t group = begin; group < end; ++group) {
      acc_t* part = grad_condensed ? partial.data() + group * mc * lc : nullptr;
      const int64_t item_end = group_begin(group + 1, groups, tiles);
      for (int64_t item = group_begin(group, groups, tiles); item < item_end; ++item) {
        const int64_t b = item / split.tiles_per_batch;
        const int64_t i0 = (item % split.tiles_per_batch) * split.tile;  // unpadded time
        const int64_t rows = std::min(split.tile, g.length - i0);
        const int64_t u0 = i0 + g.pad_left;
        adjoint_gather(gy + b * g.out_channels * g.out_len, g, u0, rows, grid);
        const acc_t* dp = grid.data() + halo * lc;
        if (part) {  // grad_condensed[j][v] += sum_r fold[j][r] * dP[r][v]
          fold.resize(mc * rows);
          fold_channels(x + b * g.in_channels * g.length, g, u0, rows, fold.data());
          for (int64_t j = 0; j < mc; ++j) {
            acc_t* part_row = part + j * lc;
            for (int64_t r = 0; r < rows; ++r) {
              const acc_t a = fold[j * rows + r];
              const acc_t* dp_row = dp + r * lc;
              for (int64_t v = 0; v < lc; ++v) part_row[v] += a * dp_row[v];
            }
          }
        }
        if (grad_input) {  // df[r][j] = sum_v dP[r][v] * condensed[j][v], copied to every repeat
          scalar_t* gx_b = grad_input + b * g.in_channels * g.length;
          for (int64_t j = 0; j < mc; ++j) {
            const acc_t* c_row = cond.data() + j * lc;
            for (int64_t r = 0; r < rows; ++r) {
              const acc_t* dp_row = dp + r * lc;
              acc_t sum = 0;
              for (int64_t v = 0; v < lc; ++v) sum += dp_row[v] * c_row[v];
              for (int64_t m = j; m < g.in_channels; m += mc) {
                gx_b[m * g.length + i0 + r] = static_cast<scalar_t>(sum);
              }
            }
          }
        }
      }
    }
  });
  if (grad_condensed) {  // fixed-order sum of the group partials
    at::parallel_for(0, mc * lc, 1024, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        acc_t sum = 0;
        for (int64_t group = 0; group < groups; ++group) sum += partial[group * mc * lc + k];
        grad_condensed[k] = static_cast<scalar_t>(sum);
      }
    });
  }
}

template <typename scalar_t>
void bias_grad_kernel(const scalar_t* gy, scalar_t* grad_bias, const Conv1dGeometry& g) {
  using acc_t = at::opmath_type<scalar_t>;
  at::parallel_for(0, g.out_channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t n = begin; n < end; ++n) {
      acc_t sum = 0;
      for (int64_t b = 0; b < g.batch; ++b) {
        const scalar_t* row = gy + (b * g.out_channels + n) * g.out_len;
        for (int64_t t = 0; t < g.out_len; ++t) sum += static_cast<acc_t>(row[t]);
      }
      grad_bias[n] = static_cast<scalar_t>(sum);
    }
  });
}

at::Tensor ws_conv1d_forward_cpu(const at::Tensor& input, const at::Tensor& condensed,
                                 const c10::optional<at::Tensor>& bias, int64_t kernel_size,
                                 int64_t sample_stride, int64_t channel_repeat, int64_t stride,
                                 at::IntArrayRef padding, int64_t dilation) {
  const Conv1dGeometry g = make_conv1d_geometry(input, condensed, kernel_size, sample_stride,
                                                channel_repeat, stride, padding, dilation);
  check_conv1d_bias(bias, input, g);
  const at::Tensor x = input.contiguous(), c = condensed.contiguous();
  const at::Tensor bias_c = bias.has_value() ? bias->contiguous() : at::Tensor();
  at::Tensor y = at::empty({g.batch, g.out_channels, g.out_len}, input.options());
  if (y.numel() == 0) return y;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "ws_conv1d_forward_cpu", [&] {
    forward_kernel<scalar_t>(x.const_data_ptr<scalar_t>(), c.const_data_ptr<scalar_t>(),
                             bias_c.defined() ? bias_c.const_data_ptr<scalar_t>() : nullptr,
                             y.mutable_data_ptr<scalar_t>(), g);
  });
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ws_conv1d_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& condensed,
    int64_t kernel_size, int64_t sample_stride, int64_t channel_repeat, int64_t stride,
    at::IntArrayRef padding, int64_t dilation, std::array<bool, 3> output_mask) {
  const Conv1dGeometry g = make_conv1d_geometry(input, condensed, kernel_size, sample_stride,
                                                channel_repeat, stride, padding, dilation);
  check_conv1d_grad_output(grad_output, input, g);
  const at::Tensor gy = grad_output.contiguous(), x = input.contiguous(),
                   c = condensed.contiguous();
  // The kernels write every element; with no output at all (batch 0) the gradients are zero.
  const bool no_output = gy.numel() == 0;
  const auto make = [&](bool wanted, const at::Tensor& like) {
    if (!wanted) return at::empty({0}, input.options());
    return no_output ? at::zeros_like(like) : at::empty_like(like);
  };
  at::Tensor grad_input = make(output_mask[0], x);
  at::Tensor grad_condensed = make(output_mask[1], c);
  at::Tensor grad_bias = make(output_mask[2], at::empty({g.out_channels}, input.options()));
  if (no_output) return {grad_input, grad_condensed, grad_bias};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "ws_conv1d_backward_cpu", [&] {
    if (output_mask[0] || output_mask[1]) {
      backward_kernel<scalar_t>(
          gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
          c.const_data_ptr<scalar_t>(),
          output_mask[0] ? grad_input.mutable_data_ptr<scalar_t>() : nullptr,
          output_mask[1] ? grad_condensed.mutable_data_ptr<scalar_t>() : nullptr, g);
    }
    if (output_mask[2]) {
      bias_grad_kernel<scalar_t>(gy.const_data_ptr<scalar_t>(),
                                 grad_bias.mutable_data_ptr<scalar_t>(), g);
    }
  });
  return {grad_input, grad_condensed, grad_bias};
}

}  // namespace

TORCH_LIBRARY_IMPL(wsnet_ext, CPU, m) {
  m.impl("ws_conv1d_forward", &ws_conv1d_forward_cpu);
  m.impl("ws_conv1d_backward", &ws_conv1d_backward_cpu);
}

}  // namespace wsnet
