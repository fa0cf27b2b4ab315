// Host model of the fused CUDA strip backward (cuda/ws_conv1d_strip_adjoint_kernel.cuh): the same
// plan, frames, walkers, products and partial buffer (ws_conv1d_strip_adjoint.h), run block by
// block and thread by thread on the CPU. Test-only: op
// wsnet_host_models::ws_conv1d_strip_adjoint_model (ws_host_models.cpp).
// Returns (grad_input, grad_condensed, int64 stats): 0 Ru, 1 strips, 2 lines, 3 ring K, 4 shared
// bytes, 5 grid, 6 reads of shared memory not written in this strip / tile (must be 0), 7 blocks
// that took the NaN/Inf path, 8 MMA fragment elements not covered exactly once (must be 0).
#include <cmath>
#include <vector>

#include "common/ws_conv1d_op_args.h"
#include "common/ws_static_switch.h"
#include "strips/ws_conv1d_strip_adjoint.h"
#include "common/ws_stable.h"
#include "strips/host_model/ws_mma_model.h"

namespace wsnet {
namespace {

enum AdjointStat {
  kAdjRows, kAdjStrips, kAdjLines, kAdjRing, kAdjShared, kAdjGrid, kAdjUnwritten, kAdjNonfinite, kAdjFragmentErrors,
  kAdjStatCount
};

// grad_f (rows_pad x j_pad) += dP . C on tensor cores: warp w takes the 16-row bands w, w + 8, ...;
// per band, the j tiles in chunks of 4, k over the tile's 32 columns; then G += the accumulators.
void model_grad_f_mma(SharedModel& sm, const AdjointPlan& p, int warps, bool three, std::vector<int64_t>& stats) {
  const int bands = int(p.rows_pad / 16), n_tiles = int(p.j_pad / 8);
  for (int warp = 0; warp < warps; ++warp) {
    for (int band = warp; band < bands; band += warps) {
      for (int nt0 = 0; nt0 < n_tiles; nt0 += 4) {
        float acc[4][32][4] = {};
        for (int k0 = 0; k0 < kStripColumns; k0 += 8) {
          float a[32][4];
          for (int lane = 0; lane < 32; ++lane)
            for (int i = 0; i < 4; ++i)
              a[lane][i] = sm.read(adjoint_p_index(p, k0 + mma_a_k(lane, i), 16 * band + mma_a_row(lane, i)));
          for (int nt = nt0; nt < std::min(nt0 + 4, n_tiles); ++nt) {
            float b[32][2];
            for (int lane = 0; lane < 32; ++lane)
              for (int i = 0; i < 2; ++i) b[lane][i] = sm.read(adjoint_c_index(p, k0 + mma_b_k(lane, i), 8 * nt + mma_b_n(lane)));
            stats[kAdjFragmentErrors] += emulate_mma(acc[nt - nt0], a, b, three);
          }
        }
        for (int nt = nt0; nt < std::min(nt0 + 4, n_tiles); ++nt) {
          for (int lane = 0; lane < 32; ++lane) {
            for (int i = 0; i < 4; ++i) {
              const int64_t at = adjoint_g_index(p, 16 * band + mma_c_row(lane, i), 8 * nt + mma_c_n(lane, i));
              sm.write(at, sm.read(at) + acc[nt - nt0][lane][i]);
            }
          }
        }
      }
    }
  }
}

// partial (j_pad x CT) += F^T . dP on tensor cores: items of 16 channels x 8 columns, split over
// warps by ranges of rows; the splits meet in scratch and are added in warp order.
void model_partial_mma(SharedModel& sm, const AdjointPlan& p, const Conv1dGeometry& g, int v0, int warps,
                       bool three, float* partial, std::vector<int64_t>& stats) {
  const int items = adjoint_partial_items(p), splits = adjoint_partial_splits(p);
  std::vector<float> result(size_t(warps) * 128, 0.f);
  for (int warp = 0; warp < warps; ++warp) {
    for (int unit = warp; unit < items * splits; unit += warps) {
      const int item = unit / splits, split = unit % splits, mt = item / 4, nt = item % 4;
      int first = 0, last = 0;
      adjoint_split_steps(p, split, splits, first, last);
      float acc[32][4] = {};
      for (int step = first; step < last; ++step) {
        const int k0 = 8 * step;
        float a[32][4], b[32][2];
        for (int lane = 0; lane < 32; ++lane) {
          for (int i = 0; i < 4; ++i) a[lane][i] = sm.read(adjoint_f_index(p, k0 + mma_a_k(lane, i), 16 * mt + mma_a_row(lane, i)));
          for (int i = 0; i < 2; ++i) b[lane][i] = sm.read(adjoint_p_index(p, 8 * nt + mma_b_n(lane), k0 + mma_b_k(lane, i)));
        }
        stats[kAdjFragmentErrors] += emulate_mma(acc, a, b, three);
      }
      if (splits == 1) {
        for (int lane = 0; lane < 32; ++lane) {
          for (int i = 0; i < 4; ++i) {
            const int j = 16 * mt + mma_c_row(lane, i), v = v0 + 8 * nt + mma_c_n(lane, i);
            if (j < g.condensed_channels && v < g.condensed_len) partial[int64_t(j) * g.condensed_len + v] += acc[lane][i];
          }
        }
      } else {
        for (int lane = 0; lane < 32; ++lane)
          for (int i = 0; i < 4; ++i) result[size_t(warp) * 128 + lane * 4 + i] = acc[lane][i];
      }
    }
  }
  if (splits == 1) return;
  for (int k = 0; k < items * 128; ++k) {  // thread k: item k / 128, element (lane, i) k % 128
    const int item = k / 128, e = k % 128, lane = e / 4, i = e % 4, mt = item / 4, nt = item % 4;
    float sum = 0.f;
    for (int split = 0; split < splits; ++split) sum += result[size_t(item * splits + split) * 128 + e];
    const int j = 16 * mt + mma_c_row(lane, i), v = v0 + 8 * nt + mma_c_n(lane, i);
    if (j < g.condensed_channels && v < g.condensed_len) partial[int64_t(j) * g.condensed_len + v] += sum;
  }
}

template <int KT, typename scalar_t>
void model_adjoint(const scalar_t* gy, const scalar_t* x, const float* cond, scalar_t* grad_input,
                   float* partials, const Conv1dGeometry& g, const AdjointPlan& p, bool want_input,
                   bool want_condensed, std::vector<int64_t>& stats) {
  const int threads = int(p.threads), warps = threads / 32, mc = int(g.condensed_channels);
  const bool mma = p.precision != int(StripPrecision::kFma);
  const bool three = p.precision == int(StripPrecision::kTf32x3);
  SharedModel sm(p.shared_floats, &stats[kAdjUnwritten]);
  const auto store = [&](int64_t i, float v) { sm.write(i, v); };
  std::vector<AdjointWalker<KT>> walkers(size_t(threads) * kAdjointLinesPerThread);
  std::vector<char> active(walkers.size());
  for (int64_t slot = 0; slot < p.grid; ++slot) {  // persistent block `slot`, its strips in order
    float* partial = partials + slot * mc * g.condensed_len;
    for (int64_t strip = slot; strip < g.batch * p.strips; strip += p.grid) {
      const int64_t b = strip / p.strips, u0 = (strip % p.strips) * p.rows;
      const int own_rows = int(std::min<int64_t>(p.rows, g.padded_len - u0));
      int64_t t_lo = 0, t_count = 0;
      adjoint_frame(p, g, u0, t_lo, t_count);
      const int own0 = int(u0 - t_lo * g.stride);  // the strip's first row in frame rows
      const scalar_t* x_b = x + b * g.in_channels * g.length;
      const scalar_t* gy_b = gy + b * g.out_channels * g.out_len;
      sm.forget_all();
      for (int tid = 0; tid < threads; ++tid) adjoint_fold(p, g, x_b, u0, own_rows, tid, threads, store);
      for (int tid = 0; tid < threads; ++tid)
        for (int kk = 0; kk < kAdjointLinesPerThread; ++kk)
          active[kk * threads + tid] = t_count > 0 &&
              adjoint_walker_setup(p, g, tid + kk * threads, int(t_count), walkers[kk * threads + tid]);
      bool nonfinite = false;  // sticky: once met, every later tile is made pointwise
      for (int64_t ct = 0; ct < p.col_tiles; ++ct) {
        const int v0 = int(ct * kStripColumns);
        sm.forget(p.c_offset, p.g_offset);  // stale slab and dP
        sm.forget(p.scratch_offset, p.shared_floats);
        for (int tid = 0; tid < threads; ++tid) adjoint_load_tile(p, g, cond, v0, tid, threads, store);
        for (int tid = 0; tid < threads; ++tid) {
          for (int kk = 0; kk < kAdjointLinesPerThread; ++kk) {
            if (!active[kk * threads + tid]) continue;
            adjoint_walk(walkers[kk * threads + tid], v0 + kStripColumns, p, g,
                         [&](int n, int t) {
                           const float value = static_cast<float>(gy_b[n * g.out_len + t_lo + t]);
                           nonfinite |= !std::isfinite(value);
                           return value;
                         },
                         [&](int v, int r, float value) {
                           if (r >= own0 && r < own0 + own_rows) sm.write(adjoint_p_index(p, v - v0, r - own0), value);
                         });
          }
        }
        if (nonfinite) {
          for (int tid = 0; tid < threads; ++tid)
            adjoint_pointwise_tile(p, g, gy_b, u0, own_rows, v0, tid, threads, store);
        }
        if (mma) {
          if (want_input) model_grad_f_mma(sm, p, warps, three, stats);
          if (want_condensed) model_partial_mma(sm, p, g, v0, warps, three, partial, stats);
        } else {
          for (int tid = 0; tid < threads; ++tid) {
            if (want_input) adjoint_accumulate_grad_f(sm.value.data(), p, mc, own_rows, tid, threads);
            if (want_condensed) adjoint_accumulate_partial(sm.value.data(), p, g, own_rows, v0, partial, tid, threads);
          }
        }
      }
      stats[kAdjNonfinite] += nonfinite;
      if (want_input) {
        for (int tid = 0; tid < threads; ++tid)
          adjoint_write_grad_input(p, g, sm.value.data(), b, u0, own_rows, grad_input, tid, threads);
      }
    }
  }
}

std::tuple<Tensor, Tensor, Tensor> ws_conv1d_strip_adjoint_model_cpu(
    const Tensor& grad_output, const Tensor& input, const Tensor& condensed, int64_t kernel_size,
    int64_t sample_stride, int64_t channel_repeat, int64_t stride, IntArray padding, int64_t dilation,
    std::vector<bool> output_mask, int64_t precision, int64_t shared_limit, int64_t max_grid) {
  const Conv1dGeometry g = make_conv1d_backward_geometry(grad_output, input, condensed, kernel_size,
                                                         sample_stride, channel_repeat, stride,
                                                         padding, dilation, output_mask);
  WS_CHECK(input.scalar_type() != ScalarType::Double,
           "ws_conv1d_strip_adjoint_model: the fused backward takes float32, float16 or bfloat16, got float64");
  WS_CHECK(precision >= 0 && precision <= 2, "ws_conv1d_strip_adjoint_model: precision expects 0 (fma), 1 (tf32) "
           "or 2 (3xtf32), got ", precision);
  const AdjointPlan p = choose_adjoint_plan(g, StripPrecision(precision), shared_limit, max_grid);
  WS_CHECK(p.rows > 0, "ws_conv1d_strip_adjoint_model: the fused backward does not fit this shape (ring K = ",
           "ceil(L / (dn*S)) <= 8, frame lines <= 768, shared memory, Mc >= 8 for tensor cores); does not fit");
  const Tensor gy = as_contiguous(grad_output), x = as_contiguous(input);
  const Tensor cond = as_contiguous(to_dtype(condensed, ScalarType::Float));
  Tensor grad_input = torch::stable::new_zeros(x, x.sizes());
  Tensor partials = torch::stable::new_zeros(cond, {p.grid, g.condensed_channels, g.condensed_len});
  std::vector<int64_t> stats(kAdjStatCount, 0);
  stats[0] = p.rows;
  stats[1] = p.strips;
  stats[2] = p.lines;
  stats[3] = p.ring;
  stats[4] = p.shared_floats * 4;
  stats[5] = p.grid;
  WS_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ws_conv1d_strip_adjoint_model", [&] {
    if constexpr (!std::is_same_v<scalar_t, double>) {
      with_constant<4, 8>(adjoint_ring_template(p.ring), [&](auto kt) {
        model_adjoint<decltype(kt)::value>(gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                           cond.const_data_ptr<float>(), grad_input.mutable_data_ptr<scalar_t>(),
                                           partials.mutable_data_ptr<float>(), g, p, output_mask[0],
                                           output_mask[1], stats);
      });
    }
  });
  // the reduction kernel's fixed order: slot 0, 1, ..., grid - 1
  Tensor grad_condensed = torch::stable::new_zeros(cond, {g.condensed_channels, g.condensed_len});
  float* out = grad_condensed.mutable_data_ptr<float>();
  const float* parts = partials.const_data_ptr<float>();
  const int64_t slice = g.condensed_channels * g.condensed_len;
  for (int64_t i = 0; i < slice; ++i) {
    float sum = 0.f;
    for (int64_t slot = 0; slot < p.grid; ++slot) sum += parts[slot * slice + i];
    out[i] = sum;
  }
  Tensor stats_t = torch::stable::new_empty(x, {kAdjStatCount}, ScalarType::Long);
  for (int i = 0; i < kAdjStatCount; ++i) stats_t.mutable_data_ptr<int64_t>()[i] = stats[i];
  return {grad_input, to_dtype(grad_condensed, input.scalar_type()), stats_t};
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(wsnet_host_models, CPU, m) {
  m.impl("ws_conv1d_strip_adjoint_model", TORCH_BOX(&ws_conv1d_strip_adjoint_model_cpu));
}

}  // namespace wsnet
