// WSConv1d on the CPU by the integral-image method (docs/design.md §2).
//
// Forward: tiles of outputs (b, t0..t1) in parallel; each folds its input rows (§2.1), then
// walks the condensed filter's columns: P column block (§2.2), line prefix (§2.3), and the
// outputs whose segments open or close at that column (§2.4) — ws_conv1d_tile_kernels.h.
// Backward: tiles of input rows (b, u0..u1); each builds dP column by column from the segment
// markers, 16 columns at a time in a buffer that stays in L1, and accumulates grad_input and
// grad_condensed from each chunk.
// Tiles depend only on the shapes, never on the thread count, and the partial sums of
// grad_condensed are added in a fixed order, so results are bitwise reproducible.
#include <algorithm>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "common/ws_conv1d_op_args.h"
#include "common/ws_stable.h"
#include "tiles/cpu/ws_conv1d_isa.h"
#include "tiles/cpu/ws_conv1d_polyphase.h"
#include "tiles/cpu/ws_huge_pages.h"
#include "tiles/cpu/ws_conv1d_tiles.h"

namespace wsnet {
namespace {

// condensed^T of g's layout in the accumulation type, rows padded with zeros to whole column
// blocks, read from the caller's condensed (Mc0, Lc0): with `phases` > 1 (a polyphase split),
// g's channel p*Mc0 + j, column v is the caller's channel j, column v*phases + p.
template <typename scalar_t, typename acc_t>
std::vector<acc_t> transposed_condensed(const scalar_t* cond, const Conv1dGeometry& g, int64_t phases) {
  const int64_t mc = g.condensed_channels, lc = g.condensed_len, mc0 = mc / phases;
  const int64_t lc_padded = ceil_div(lc, tile::kColumnBlock) * tile::kColumnBlock;
  std::vector<acc_t> cond_t(lc_padded * mc, acc_t(0));
  // by blocks of 16 columns: each block reads one cache line of every row and fills 16 whole
  // output rows (column by column over the whole filter, the writes strode Mc apart: a quarter of
  // conv7's batch-1 forward went here)
  // (channel j = p*Mc0 + j0 by two loops: a division per channel and block took ~1 us of a small
  // layer's call)
  constexpr int64_t kBlock = 16;
  for (int64_t v0 = 0; v0 < lc; v0 += kBlock) {
    const int64_t v1 = std::min(v0 + kBlock, lc);
    for (int64_t p = 0, j = 0; p < phases; ++p) {
      for (int64_t j0 = 0; j0 < mc0; ++j0, ++j) {
        const scalar_t* row = cond + j0 * lc * phases + p;
        for (int64_t v = v0; v < v1; ++v) cond_t[v * mc + j] = static_cast<acc_t>(row[v * phases]);
      }
    }
  }
  return cond_t;
}

// Outputs [t0, t1) of batch b by the definition itself (definition_output, ws_conv1d_geometry.h;
// cond_t is condensed^T). Used for tiles whose input, or a condensed filter, holds NaN or Inf:
// the line prefix sums would carry them to outputs whose windows never see them, and the channel
// fold would add +Inf and -Inf before the multiply, so only this order matches conv1d.
template <typename scalar_t, typename acc_t>
void forward_tile_definition(const scalar_t* x_b, const acc_t* cond_t, const acc_t* bias,
                             const Conv1dGeometry& g, int64_t t0, int64_t t1, int64_t n0, int64_t n1,
                             acc_t* y, int64_t ld_y) {
  for (int64_t n = n0; n < n1; ++n) {
    for (int64_t t = t0; t < t1; ++t) {
      y[n * ld_y + (t - t0)] = definition_output<acc_t>(x_b, cond_t, 1, g.condensed_channels, g, n, t,
                                                        bias ? bias[n] : acc_t(0));
    }
  }
}

// g: the geometry the tiles run on (the split one under a polyphase split); g0 and condensed0:
// the caller's (g's condensed filter is read from it, and the definition's sums where NaN / Inf
// appear use it); `in`: where the rows come from.
template <typename scalar_t>
void forward_kernel(const scalar_t* x, const scalar_t* bias, scalar_t* y, const Conv1dGeometry& g,
                    const InputLayout& in, const Conv1dGeometry& g0, const scalar_t* condensed0) {
  using acc_t = acc_type<scalar_t>;
  const int64_t mc = g.condensed_channels, n_out = g.out_channels;
  const std::vector<acc_t> cond_t = transposed_condensed<scalar_t, acc_t>(condensed0, g, in.phases);
  // The definition's sums (tiles with NaN / Inf) read condensed^T in the caller's layout (g0): under
  // a polyphase split that is the same memory, since split channel p*Mc0 + j0, column v is caller
  // column v*phases + p: (v*phases + p)*Mc0 + j0 either way (a second transpose took ~1 us a call).
  const acc_t* definition_cond = cond_t.data();
  std::vector<acc_t> bias_acc(bias ? n_out : 0);
  for (int64_t n = 0; n < (bias ? n_out : 0); ++n) bias_acc[n] = static_cast<acc_t>(bias[n]);
  const bool cond_finite = run_all_finite(cond_t.data(), static_cast<int64_t>(cond_t.size()));
  const TileSplit split = forward_tiles(g, sizeof(acc_t));
  const int64_t groups = forward_filter_groups(g, split);  // filters [k*N/groups, (k+1)*N/groups)
  torch::stable::parallel_for(0, g.batch * split.tiles_per_batch * groups, 1, [&](int64_t begin, int64_t end) {
    const int64_t ld = forward_buffer_rows(g.tile_rows(0, split.tile));  // the largest tile
    const int64_t pad = tile::padded_rows(g.dilation);  // zeros in front of each prefix column
    // float and double outputs are written in place; half types go through an acc_t tile
    constexpr bool in_place = std::is_same_v<scalar_t, acc_t>;
    const int64_t fold_ld = tile::fold_stride(ld);
    const LineAlignedBuffer<acc_t> fold(mc * fold_ld), column((tile::kColumnBlock + 1) * (pad + ld)),
        carry(tile::carry_size(g.condensed_len)), y_tile(in_place ? 1 : n_out * split.tile);
    const LineAlignedBuffer<int32_t> events(tile::events_size(g.condensed_len));
    tile::Workspace<acc_t> w{fold.get(), cond_t.data(), nullptr, column.get(), ld, 0, pad, fold_ld, carry.get(),
                             events.get()};
    for (int64_t item = begin; item < end; ++item) {
      const int64_t group = item % groups, row_item = item / groups;
      const int64_t n0 = group * n_out / groups, n1 = (group + 1) * n_out / groups;
      const int64_t b = row_item / split.tiles_per_batch;
      const int64_t t0 = (row_item % split.tiles_per_batch) * split.tile;
      const int64_t t1 = std::min(t0 + split.tile, g.out_len);
      const scalar_t* x_b = x + b * in.channels * in.length;
      // NaN / Inf: the definition's own sums, so they reach exactly the outputs conv1d's would
      const bool finite = run_fold_rows(x_b, in, g.first_row(t0), g.tile_rows(t0, t1), fold_ld, fold.get(), cond_finite)
                          && cond_finite;
      scalar_t* y_b = y + b * n_out * g.out_len + t0;
      const auto run = [&](acc_t* out, int64_t ld_y) {
        if (finite) run_forward_tile(w, g, bias ? bias_acc.data() : nullptr, t0, t1, n0, n1, out, ld_y);
        else forward_tile_definition(x_b, definition_cond, bias ? bias_acc.data() : nullptr, g0, t0,
                                     t1, n0, n1, out, ld_y);
      };
      if constexpr (in_place) {
        run(y_b, g.out_len);
      } else {
        run(y_tile.get(), t1 - t0);
        for (int64_t n = n0; n < n1; ++n) {
          for (int64_t t = 0; t < t1 - t0; ++t) {
            y_b[n * g.out_len + t] = static_cast<scalar_t>(y_tile.get()[n * (t1 - t0) + t]);
          }
        }
      }
    }
  });
}

// g: the geometry the tiles run on (the split one under a polyphase split, whose rows have no
// padding); `in`: where its rows are in x and grad_input. condensed and grad_condensed have the
// caller's layout.
static_assert(kDpChunkColumns == tile::kDpChunk + 1, "backward_tiles sizes tiles by the dP chunk");

// Outputs [t0, t1) of a backward tile's batch whose bias gradient it sums: those whose first row
// lies in its input rows [u0, u0 + rows), the batch's first tile also those before and the last
// those after (outputs over the padding alone). The tiles of a batch partition its outputs.
struct OwnedOutputs {
  int64_t t0, t1;
};
inline OwnedOutputs owned_outputs(const Conv1dGeometry& g, const TileSplit& split, int64_t tile, int64_t u0,
                                  int64_t rows) {
  const auto first_at_or_after = [&](int64_t row) { return std::min(ceil_div(std::max<int64_t>(row, 0), g.stride), g.out_len); };
  const int64_t t0 = tile == 0 ? 0 : first_at_or_after(u0);
  const int64_t t1 = tile == split.tiles_per_batch - 1 ? g.out_len : first_at_or_after(u0 + rows);
  return {t0, std::max(t0, t1)};
}

// grad_bias (when not null) is summed here too, each tile over the outputs it owns right after its
// adjoint read their grad_output rows (a pass of its own read all of grad_output again: ~4% of
// `long`'s backward, ~10% of conv1's), in a fixed order: tiles within a group, then groups.
template <typename scalar_t>
void backward_kernel(const Tensor& gy_acc, const scalar_t* x, const scalar_t* condensed,
                     scalar_t* grad_input, scalar_t* grad_condensed, scalar_t* grad_bias,
                     const Conv1dGeometry& g, const InputLayout& in) {
  using acc_t = acc_type<scalar_t>;
  const acc_t* gy = gy_acc.const_data_ptr<acc_t>();
  const int64_t mc = g.condensed_channels, lc = g.condensed_len;
  const std::vector<acc_t> cond_t = transposed_condensed<scalar_t, acc_t>(condensed, g, in.phases);
  const TileSplit split = backward_tiles(g, sizeof(acc_t));
  const int64_t tiles = g.batch * split.tiles_per_batch;
  constexpr int64_t slots = tile::kSlots<acc_t>;
  // one group's grad_condensed scratch: lane accumulators and its partial sum
  const int64_t group_bytes = grad_condensed ? mc * lc * (slots + 1) * int64_t(sizeof(acc_t)) : 0;
  const int64_t groups = reduction_groups(tiles, group_bytes);
  std::vector<acc_t> partial(grad_condensed ? groups * mc * lc : 0);
  std::vector<acc_t> bias_partial(grad_bias ? groups * g.out_channels : 0);  // zeros: each group adds
  // grain 1 over the groups: at most `groups` chunks, so at most `groups` lane buffers at once
  torch::stable::parallel_for(0, groups, 1, [&](int64_t begin, int64_t end) {
    const int64_t ld = tile::padded_rows(split.tile);
    const int64_t pad = tile::padded_rows(g.dilation);
    const int64_t ld_grid = pad + tile::padded_rows(g.halo_rows() + ld);
    // every element of these is written before it is read: no zero-filling
    const int64_t fold_ld = tile::fold_stride(ld);
    std::unique_ptr<acc_t[]> fold(new acc_t[mc * fold_ld]), grad_fold(new acc_t[grad_input ? mc * fold_ld : 1]);
    // dP, a chunk of columns at a time (and the previous chunk's last); whole vectors never straddle lines
    const LineAlignedBuffer<acc_t> dp_tile((tile::kDpChunk + 1) * ld_grid);
    // written by each group's first tile before anything reads it: no zero-filling
    std::unique_ptr<acc_t[]> lanes(new acc_t[grad_condensed ? mc * lc * slots : 1]);
    tile::Workspace<acc_t> w{fold.get(), cond_t.data(), dp_tile.get(), nullptr, ld, ld_grid, pad, fold_ld, nullptr,
                             nullptr};
    for (int64_t group = begin; group < end; ++group) {
      acc_t* grad_cond = grad_condensed ? lanes.get() : nullptr;
      const int64_t item_begin = group_begin(group, groups, tiles), item_end = group_begin(group + 1, groups, tiles);
      for (int64_t item = item_begin; item < item_end; ++item) {
        const int64_t b = item / split.tiles_per_batch;
        const int64_t i0 = (item % split.tiles_per_batch) * split.tile;  // unpadded time
        const int64_t rows = std::min(split.tile, g.length - i0);
        const int64_t u0 = i0 + g.pad_left;
        if (grad_cond) {
          run_fold_rows(x + b * in.channels * in.length, in, u0, rows, fold_ld, fold.get(), false);
        }
        const acc_t* gy_b = gy + b * g.out_channels * g.out_len;
        run_backward_tile(w, g, gy_b, u0, rows, grad_input ? grad_fold.get() : nullptr, grad_cond, item == item_begin);
        if (grad_input) {  // dx[b, c*Mc + j, i] = df[p*Mc + j][r], i = phases*(u0 + r) + p - pad_left
          run_write_grad_rows(grad_fold.get(), in, u0, rows, fold_ld, grad_input + b * in.channels * in.length);
        }
        if (grad_bias) {
          const OwnedOutputs own = owned_outputs(g, split, item % split.tiles_per_batch, u0, rows);
          run_add_row_sums(gy_b + own.t0, g.out_channels, g.out_len, own.t1 - own.t0,
                           bias_partial.data() + group * g.out_channels);
        }
      }
      if (grad_cond) {  // the group's partial: lane accumulators summed in a fixed order
        acc_t* part = partial.data() + group * mc * lc;
        for (int64_t i = 0; i < mc * lc; ++i) part[i] = tile::sum_slots(lanes.get() + i * slots);
      }
    }
  });
  for (int64_t n = 0; n < (grad_bias ? g.out_channels : 0); ++n) {  // fixed-order sum of the groups'
    acc_t sum = 0;
    for (int64_t group = 0; group < groups; ++group) sum += bias_partial[group * g.out_channels + n];
    grad_bias[n] = static_cast<scalar_t>(sum);
  }
  if (grad_condensed) {  // fixed-order sum of the group partials, into the caller's layout
    const int64_t mc0 = mc / in.phases;
    torch::stable::parallel_for(0, mc * lc, 1024, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        acc_t sum = 0;
        for (int64_t group = 0; group < groups; ++group) sum += partial[group * mc * lc + k];
        const int64_t j = k / lc, v = k % lc;  // g's channel j = p*Mc0 + j0, column v
        grad_condensed[(j % mc0) * lc * in.phases + v * in.phases + j / mc0] = static_cast<scalar_t>(sum);
      }
    });
  }
}

template <typename scalar_t>
void bias_grad_kernel(const scalar_t* gy, scalar_t* grad_bias, const Conv1dGeometry& g) {
  using acc_t = acc_type<scalar_t>;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, g.batch * g.out_len));
  torch::stable::parallel_for(0, g.out_channels, grain, [&](int64_t begin, int64_t end) {
    // kLanes partial sums in a fixed order (they vectorize; one running sum is a latency chain)
    constexpr int64_t kLanes = 16;
    for (int64_t n = begin; n < end; ++n) {
      acc_t part[kLanes] = {};
      acc_t tail = 0;
      for (int64_t b = 0; b < g.batch; ++b) {
        const scalar_t* row = gy + (b * g.out_channels + n) * g.out_len;
        int64_t t = 0;
        for (; t + kLanes <= g.out_len; t += kLanes) {
          for (int64_t i = 0; i < kLanes; ++i) part[i] += static_cast<acc_t>(row[t + i]);
        }
        for (; t < g.out_len; ++t) tail += static_cast<acc_t>(row[t]);
      }
      acc_t sum = tail;
      for (int64_t i = 0; i < kLanes; ++i) sum += part[i];
      grad_bias[n] = static_cast<scalar_t>(sum);
    }
  });
}

Tensor ws_conv1d_forward_cpu(const Tensor& input, const Tensor& condensed,
                             const std::optional<Tensor>& bias, int64_t kernel_size,
                             int64_t sample_stride, int64_t channel_repeat, int64_t stride,
                             IntArray padding, int64_t dilation) {
  const ForwardOperands op = forward_operands(input, condensed, bias, kernel_size, sample_stride, channel_repeat,
                                              stride, padding, dilation, condensed.scalar_type());
  const Conv1dGeometry& g = op.g;
  const Tensor &x = op.x, &c = op.cond;
  const std::optional<Tensor>& bias_c = op.bias;
  Tensor y = torch::stable::new_empty(x, {g.batch, g.out_channels, g.out_len});
  if (y.numel() == 0) return y;
  advise_huge_pages(y);  // before the kernels first touch it
  // strided layers run as their polyphase split (ws_conv1d_polyphase.h): 1/g of the work
  const Polyphase plan = plan_polyphase(g);
  const Conv1dGeometry gs = plan.phases > 1 ? split_geometry(g, plan) : g;
  WS_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ws_conv1d_forward_cpu", [&] {
    forward_kernel<scalar_t>(x.const_data_ptr<scalar_t>(),
                             bias_c.has_value() ? bias_c->const_data_ptr<scalar_t>() : nullptr,
                             y.mutable_data_ptr<scalar_t>(), gs, input_layout(g, plan), g,
                             c.const_data_ptr<scalar_t>());
  });
  return y;
}

std::tuple<Tensor, Tensor, Tensor> ws_conv1d_backward_cpu(
    const Tensor& grad_output, const Tensor& input, const Tensor& condensed, int64_t kernel_size,
    int64_t sample_stride, int64_t channel_repeat, int64_t stride, IntArray padding,
    int64_t dilation, std::vector<bool> output_mask) {
  const BackwardOperands op = backward_operands(grad_output, input, condensed, kernel_size, sample_stride,
                                                channel_repeat, stride, padding, dilation, output_mask,
                                                condensed.scalar_type());
  const Conv1dGeometry& g = op.g;
  const Tensor &gy = op.gy, &x = op.x, &c = op.cond;
  // The kernels write every element; with no output at all (batch 0) the gradients are zero.
  const bool no_output = gy.numel() == 0;
  const auto make = [&](bool wanted, IntArray shape) {
    if (!wanted) return torch::stable::new_empty(x, {0});
    return no_output ? torch::stable::new_zeros(x, shape) : torch::stable::new_empty(x, shape);
  };
  // strided layers run as their polyphase split (ws_conv1d_polyphase.h); input rows that no
  // phase row reaches get no write there, so they are zeroed
  const Polyphase plan = plan_polyphase(g);
  const bool split = plan.phases > 1;
  const Conv1dGeometry gs = split ? split_geometry(g, plan) : g;
  const std::vector<int64_t> bias_shape{g.out_channels};
  Tensor grad_input = make(output_mask[0], x.sizes());
  if (output_mask[0]) advise_huge_pages(grad_input);
  Tensor grad_condensed = make(output_mask[1], c.sizes());
  Tensor grad_bias = make(output_mask[2], bias_shape);
  if (no_output) return {grad_input, grad_condensed, grad_bias};
  WS_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ws_conv1d_backward_cpu", [&] {
    if (split && output_mask[0]) {
      const int64_t tail = unreached_rows_begin(g, plan);
      scalar_t* gx = grad_input.mutable_data_ptr<scalar_t>();
      for (int64_t row = 0; row < g.batch * g.in_channels && tail < g.length; ++row) {
        std::fill(gx + row * g.length + tail, gx + (row + 1) * g.length, scalar_t(0));
      }
    }
    if (output_mask[0] || output_mask[1]) {
      // grad_output in the accumulation type: no copy for float32 / float64
      const Tensor gy_acc = to_dtype(gy, acc_scalar_type(x.scalar_type()));
      backward_kernel<scalar_t>(
          gy_acc, x.const_data_ptr<scalar_t>(), c.const_data_ptr<scalar_t>(),
          output_mask[0] ? grad_input.mutable_data_ptr<scalar_t>() : nullptr,
          output_mask[1] ? grad_condensed.mutable_data_ptr<scalar_t>() : nullptr,
          output_mask[2] ? grad_bias.mutable_data_ptr<scalar_t>() : nullptr, gs, input_layout(g, plan));
    } else if (output_mask[2]) {  // the bias gradient alone: one pass over grad_output
      bias_grad_kernel<scalar_t>(gy.const_data_ptr<scalar_t>(),
                                 grad_bias.mutable_data_ptr<scalar_t>(), g);
    }
  });
  return {grad_input, grad_condensed, grad_bias};
}

}  // namespace

// Which build of the CPU tile functions runs here (see ws_conv1d_isa.h).
std::string cpu_kernel_isa() { return isa_name(cpu_isa()); }

STABLE_TORCH_LIBRARY_IMPL(wsnet_ext, CPU, m) {
  m.impl("ws_conv1d_forward", TORCH_BOX(&ws_conv1d_forward_cpu));
  m.impl("ws_conv1d_backward", TORCH_BOX(&ws_conv1d_backward_cpu));
}

}  // namespace wsnet
