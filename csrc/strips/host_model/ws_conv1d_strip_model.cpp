// Host model of the CUDA strip forward (cuda/ws_conv1d_strip_kernel.cuh): the same plan, fold,
// fragment maps, TF32 rounding, line walk and register ring (ws_conv1d_strips.h), run block by
// block, warp by warp and thread by thread on the CPU, so the tests can prove the kernel's index
// math against the definition without a GPU. Test-only: op wsnet_host_models::ws_conv1d_strip_model
// (ws_host_models.cpp).
//
// Besides the output it returns what a GPU run could not show as plainly (int64 stats):
//   0 To, 1 R, 2 strips, 3 lines, 4 ring K, 5 shared bytes,
//   6 reads of shared memory not written in this tile (must be 0),
//   7 outputs written other than exactly once per strip (must be 0),
//   8 MMA fragment elements not covered exactly once (must be 0),
//   9 blocks that took the NaN/Inf path, 10 filters per block (Nf), 11 filter groups,
//   12 whether the register-window walk ran (strips/ws_conv1d_strip_window.h).
#include <cmath>
#include <vector>

#include "common/ws_conv1d_op_args.h"
#include "common/ws_static_switch.h"
#include "strips/ws_conv1d_strip_window.h"
#include "strips/ws_conv1d_strips.h"
#include "common/ws_stable.h"
#include "strips/host_model/ws_mma_model.h"

namespace wsnet {
namespace {

enum Stat {
  kTo, kRows, kStrips, kLines, kRing, kShared, kUnwritten, kOutputErrors, kFragmentErrors, kNonfiniteStrips,
  kFilters, kGroups, kWindow, kStatCount
};

// One warp's bands of the P tile as the kernel makes them: per k-step, the band's A fragments,
// then each column tile's B fragments, read through the kernel's fragment maps and multiplied as
// mma.sync defines D = A*B + C; then the accumulators stored to P.
void model_mma(SharedModel& sm, const StripPlan& p, int warp, int warps, bool three,
               std::vector<int64_t>& stats) {
  constexpr int kNTiles = kStripColumns / 8;
  for (int band = warp; band < strip_mma_bands(p); band += warps) {
    const int row0 = 16 * band;
    float acc[kNTiles][32][4] = {};
    for (int k0 = 0; k0 < p.k_pad; k0 += 8) {
      float a[32][4];
      for (int lane = 0; lane < 32; ++lane)
        for (int i = 0; i < 4; ++i) a[lane][i] = sm.read(strip_f_index(p, row0 + mma_a_row(lane, i), k0 + mma_a_k(lane, i)));
      for (int nt = 0; nt < kNTiles; ++nt) {
        float b[32][2];
        for (int lane = 0; lane < 32; ++lane)
          for (int i = 0; i < 2; ++i) b[lane][i] = sm.read(strip_c_index(p, 8 * nt + mma_b_n(lane), k0 + mma_b_k(lane, i)));
        stats[kFragmentErrors] += emulate_mma(acc[nt], a, b, three);
      }
    }
    for (int nt = 0; nt < kNTiles; ++nt)
      for (int lane = 0; lane < 32; ++lane)
        for (int i = 0; i < 4; ++i)
          sm.write(strip_p_index(p, 8 * nt + mma_c_n(lane, i), row0 + mma_c_row(lane, i)), acc[nt][lane][i]);
  }
}

template <int KT, typename scalar_t>
void model_strips(const scalar_t* x, const float* cond, const scalar_t* bias, scalar_t* y,
                  const Conv1dGeometry& g, const StripPlan& p, std::vector<int64_t>& stats) {
  const bool mma = p.precision != int(StripPrecision::kFma);
  const bool three = p.precision == int(StripPrecision::kTf32x3);
  const int threads = int(p.threads), warps = threads / 32;
  constexpr int kLines = strip_lines_per_thread(KT);
  SharedModel sm(p.shared_floats, &stats[kUnwritten]);
  std::vector<StripWalker<KT>> walkers(size_t(threads) * kLines);
  std::vector<char> active(walkers.size());
  std::vector<int> emitted;
  for (int64_t block = 0; block < g.batch * p.strips * p.groups; ++block) {
    const int64_t strip = block / p.groups, b = strip / p.strips, t0 = (strip % p.strips) * p.outputs;
    const int64_t n0 = (block % p.groups) * p.filters, col0 = n0 * g.sample_stride;
    const int t_count = int(std::min<int64_t>(p.outputs, g.out_len - t0));
    const int n_count = int(std::min<int64_t>(p.filters, g.out_channels - n0));
    const scalar_t* x_b = x + b * g.in_channels * g.length;
    sm.forget(0, p.shared_floats);
    for (int64_t k = 0; k < p.f_rows * p.k_pad; ++k) {  // fold: thread k % threads, rows fastest
      const int64_t pr = k % p.f_rows, j = k / p.f_rows;  // physical rows
      sm.write(strip_f_index(p, pr, j), strip_fold_value(x_b, g, p, t0, strip_logical_row(p, pr), j));
    }
    for (int tid = 0; tid < threads; ++tid)
      for (int kk = 0; kk < kLines; ++kk)
        active[kk * threads + tid] =
            strip_walker_setup(p, g, tid + kk * threads, t_count, n_count, walkers[kk * threads + tid]);
    emitted.assign(size_t(n_count) * t_count, 0);
    bool nonfinite = false;
    for (int64_t ct = 0; ct < p.col_tiles; ++ct) {
      const int v0 = int(ct * kStripColumns);
      sm.forget(p.c_offset, p.shared_floats);  // last tile's slab and P are stale
      for (int64_t k = 0; k < kStripColumns * p.k_pad; ++k) {  // slab: columns fastest (coalesced)
        const int64_t vl = k % kStripColumns, j = k / kStripColumns, v = col0 + v0 + vl;
        const float c = (v < g.condensed_len && j < g.condensed_channels) ? cond[j * g.condensed_len + v] : 0.0f;
        sm.write(strip_c_index(p, vl, j), c);
      }
      if (mma) {
        for (int warp = 0; warp < warps; ++warp) model_mma(sm, p, warp, warps, three, stats);
      }
      const auto get_p = [&](int v, int prow) -> float {  // prow: physical row
        float value;
        if (mma) {
          value = sm.read(strip_p_index(p, v - v0, prow));
        } else {
          value = 0;
          for (int64_t j = 0; j < g.condensed_channels; ++j)
            value += sm.read(strip_f_index(p, prow, j)) * sm.read(strip_c_index(p, v - v0, j));
        }
        nonfinite |= !std::isfinite(value);
        return value;
      };
      for (int tid = 0; tid < threads; ++tid) {
        for (int kk = 0; kk < kLines; ++kk) {
          if (!active[kk * threads + tid]) continue;
          strip_walk(walkers[kk * threads + tid], v0 + kStripColumns, p, g, get_p,
                     [&](int n, int t, float sum) {
                       if (n < 0 || n >= n_count || t < 0 || t >= t_count) {
                         ++stats[kOutputErrors];
                         return;
                       }
                       ++emitted[size_t(n) * t_count + t];
                       strip_emit_output(y, bias, g, b, n0, t0, n, t, sum);
                     });
        }
      }
    }
    for (int count : emitted) stats[kOutputErrors] += count != 1;
    if (nonfinite) {  // the kernel's uniform fallback: the strip's outputs by the definition
      ++stats[kNonfiniteStrips];
      for (int64_t n = n0; n < n0 + n_count; ++n) {
        for (int64_t t = t0; t < t0 + t_count; ++t) strip_definition_output(x_b, cond, bias, y, g, b, n, t);
      }
    }
  }
}

// The register-window walk (ws_conv1d_strip_window.h), thread by thread; NaN/Inf is seen in the
// emitted sums, and such a strip takes the definition, as in the kernel.
template <int LS, typename scalar_t>
void model_window(const scalar_t* x, const float* cond, const scalar_t* bias, scalar_t* y,
                  const Conv1dGeometry& g, const StripPlan& p, std::vector<int64_t>& stats) {
  const int threads = int(p.threads);
  SharedModel sm(p.shared_floats, &stats[kUnwritten]);
  std::vector<WindowWalker<LS>> walkers(threads);
  std::vector<char> active(threads);
  std::vector<int> emitted;
  const auto load_f = [&](int row) { return sm.read(strip_f_index(p, strip_phys_row(p, row), 0)); };
  // the rings: zeroed by the setup before any read, so plain access; the index is checked
  const auto ring = [&](int64_t i) -> float& {
    sm.written.at(i) = 1;
    return sm.value.at(i);
  };
  for (int64_t strip = 0; strip < g.batch * p.strips; ++strip) {
    const int64_t b = strip / p.strips, t0 = (strip % p.strips) * p.outputs;
    const int t_count = int(std::min<int64_t>(p.outputs, g.out_len - t0));
    const scalar_t* x_b = x + b * g.in_channels * g.length;
    sm.forget(0, p.shared_floats);
    for (int64_t pr = 0; pr < p.f_rows; ++pr) {
      sm.write(strip_f_index(p, pr, 0), strip_fold_value(x_b, g, p, t0, strip_logical_row(p, pr), 0));
    }
    for (int tid = 0; tid < threads; ++tid) {
      active[tid] = window_walker_setup(p, g, tid, t_count, walkers[tid], load_f, ring);
    }
    emitted.assign(size_t(g.out_channels) * t_count, 0);
    bool nonfinite = false;
    for (int64_t ct = 0; ct < p.col_tiles; ++ct) {
      const int v0 = int(ct * kStripColumns);
      sm.forget(p.c_offset, p.p_offset);  // the slab (the rings live on across tiles)
      for (int vl = 0; vl < kStripColumns; ++vl) {
        sm.write(strip_c_index(p, vl, 0), v0 + vl < g.condensed_len ? cond[v0 + vl] : 0.0f);
      }
      for (int tid = 0; tid < threads; ++tid) {
        if (!active[tid]) continue;
        window_walk(walkers[tid], tid, v0 + kStripColumns, p, g, t_count, load_f,
                    [&](int v) { return sm.read(strip_c_index(p, v - v0, 0)); }, ring,
                    [&](int n, int t, float sum) {
                      ++emitted[size_t(n) * t_count + t];
                      nonfinite |= !std::isfinite(sum);
                      strip_emit_output(y, bias, g, b, 0, t0, n, t, sum);
                    });
      }
    }
    for (int count : emitted) stats[kOutputErrors] += count != 1;
    if (nonfinite) {
      ++stats[kNonfiniteStrips];
      for (int64_t n = 0; n < g.out_channels; ++n) {
        for (int64_t t = t0; t < t0 + t_count; ++t) strip_definition_output(x_b, cond, bias, y, g, b, n, t);
      }
    }
  }
}

std::tuple<Tensor, Tensor> ws_conv1d_strip_model_cpu(
    const Tensor& input, const Tensor& condensed, const std::optional<Tensor>& bias,
    int64_t kernel_size, int64_t sample_stride, int64_t channel_repeat, int64_t stride,
    IntArray padding, int64_t dilation, int64_t precision, int64_t shared_limit,
    int64_t multiprocessors) {
  const Conv1dGeometry g = make_conv1d_geometry(input, condensed, kernel_size, sample_stride,
                                                channel_repeat, stride, padding, dilation);
  check_conv1d_bias(bias, input, g);
  WS_CHECK(precision >= 0 && precision <= 2, "ws_conv1d_strip_model: precision expects 0 (fma), 1 (tf32) "
           "or 2 (3xtf32), got ", precision);
  WS_CHECK(input.scalar_type() != ScalarType::Double,
           "ws_conv1d_strip_model: the strip kernel takes float32, float16 or bfloat16 input, got float64");
  const StripPlan p = choose_forward_plan(g, StripPrecision(precision), shared_limit, multiprocessors);
  WS_CHECK(p.outputs > 0, "ws_conv1d_strip_model: the strip kernel does not fit this shape (",
           g.condensed_channels, " condensed channels, precision ", precision, ", ring ",
           "K = ceil(L / (dn*S)) and lines per strip limited); does not fit");
  const Tensor x = as_contiguous(input);
  const Tensor cond = as_contiguous(to_dtype(condensed, ScalarType::Float));
  const std::optional<Tensor> bias_c = as_contiguous(bias);
  Tensor y = torch::stable::new_zeros(x, {g.batch, g.out_channels, g.out_len});
  std::vector<int64_t> stats(kStatCount, 0);
  stats[kTo] = p.outputs;
  stats[kRows] = p.rows;
  stats[kStrips] = p.strips;
  stats[kLines] = p.lines;
  stats[kRing] = p.ring;
  stats[kShared] = p.shared_floats * 4;
  stats[kFilters] = p.filters;
  stats[kGroups] = p.groups;
  stats[kWindow] = p.window;
  WS_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ws_conv1d_strip_model", [&] {
    if constexpr (!std::is_same_v<scalar_t, double>) {
      const scalar_t* bias_ptr = bias_c.has_value() ? bias_c->const_data_ptr<scalar_t>() : nullptr;
      if (p.window) {
        with_constant<1, 2>(int(p.line_step), [&](auto ls) {
          model_window<decltype(ls)::value>(x.const_data_ptr<scalar_t>(), cond.const_data_ptr<float>(), bias_ptr,
                                            y.mutable_data_ptr<scalar_t>(), g, p, stats);
        });
      } else {
        with_constant<4, 8, 16>(strip_ring_template(p.ring), [&](auto kt) {
          model_strips<decltype(kt)::value>(x.const_data_ptr<scalar_t>(), cond.const_data_ptr<float>(), bias_ptr,
                                            y.mutable_data_ptr<scalar_t>(), g, p, stats);
        });
      }
    }
  });
  Tensor stats_t = torch::stable::new_empty(x, {kStatCount}, ScalarType::Long);
  int64_t* out = stats_t.mutable_data_ptr<int64_t>();
  for (int i = 0; i < kStatCount; ++i) out[i] = stats[i];
  return {y, stats_t};
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(wsnet_host_models, CPU, m) {
  m.impl("ws_conv1d_strip_model", TORCH_BOX(&ws_conv1d_strip_model_cpu));
}

}  // namespace wsnet
