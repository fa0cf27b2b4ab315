// Host model of the CUDA strip forward (cuda/ws_conv1d_strip_kernel.cuh): the same plan, fold,
// fragment maps, TF32 rounding, line walk and register ring (ws_conv1d_strips.h), run block by
// block, warp by warp and thread by thread on the CPU, so the tests can prove the kernel's index
// math against the definition without a GPU. Test-only: op wsnet_ext::ws_conv1d_strip_model.
//
// Besides the output it returns what a GPU run could not show as plainly (int64 stats):
//   0 To, 1 R, 2 strips, 3 lines, 4 ring K, 5 shared bytes,
//   6-9 bank conflicts (extra wavefronts) of A-fragment loads, B-fragment loads, P stores, walker
//       reads of P; 10 walker reads of P (warp-wide accesses),
//   11 reads of shared memory not written in this tile (must be 0),
//   12 outputs written other than exactly once per strip (must be 0),
//   13 MMA fragment elements not covered exactly once (must be 0),
//   14 blocks that took the NaN/Inf path, 15 filters per block (Nf), 16 filter groups,
//   17 whether the register-window walk ran (ws_conv1d_strip_window.h).
#include <cmath>
#include <vector>

#include "../ws_conv1d_op_args.h"
#include "../ws_conv1d_strip_window.h"
#include "../ws_conv1d_strips.h"
#include "../ws_stable.h"

namespace wsnet {
namespace {

enum Stat {
  kTo, kRows, kStrips, kLines, kRing, kShared, kConflictA, kConflictB, kConflictStore, kConflictWalk,
  kWalkReads, kUnwritten, kOutputErrors, kFragmentErrors, kNonfiniteStrips, kFilters, kGroups, kWindow, kStatCount
};

// Shared memory of one block, with a written flag per word (stale words count as unwritten).
struct SharedModel {
  std::vector<float> value;
  std::vector<char> written;
  int64_t* unwritten;
  void write(int64_t i, float v) { value.at(i) = v; written.at(i) = 1; }
  float read(int64_t i) const {
    if (!written.at(i)) ++*unwritten;
    return value.at(i);
  }
  void forget(int64_t from, int64_t to) { std::fill(written.begin() + from, written.begin() + to, 0); }
};

// (a_hi, a_lo) of the 3xTF32 split, or (tf32(a), 0) for one TF32 product.
void split_operand(float a, bool three, float& hi, float& lo) {
  hi = round_to_tf32(a);
  lo = three ? round_to_tf32(a - hi) : 0.0f;
}

// One warp's bands of the P tile as the kernel makes them (per k-step: the band's A fragments,
// then each column tile's B fragments), read through the kernel's fragment maps and multiplied as
// mma.sync defines D = A*B + C (float32 accumulate; the 3xTF32 products in the kernel's order).
void model_mma(SharedModel& sm, const StripPlan& p, int warp, int warps, bool three,
               std::vector<int64_t>& stats) {
  constexpr int kNTiles = kStripColumns / 8;
  int64_t address[32];
  for (int band = warp; band < strip_mma_bands(p); band += warps) {
    const int row0 = 16 * band;
    std::vector<float> acc(kNTiles * 32 * 4, 0.0f);  // [nt][lane][i]
    for (int k0 = 0; k0 < p.k_pad; k0 += 8) {
      float a[16][8];
      int cover_a[16][8] = {};
      for (int i = 0; i < 4; ++i) {
        for (int lane = 0; lane < 32; ++lane) {
          const int r = mma_a_row(lane, i), k = mma_a_k(lane, i);
          address[lane] = strip_f_index(p, row0 + r, k0 + k);
          a[r][k] = sm.read(address[lane]);
          ++cover_a[r][k];
        }
        stats[kConflictA] += strip_bank_conflicts(address);
      }
      for (int r = 0; r < 16; ++r)
        for (int k = 0; k < 8; ++k) stats[kFragmentErrors] += cover_a[r][k] != 1;
      for (int nt = 0; nt < kNTiles; ++nt) {
        float b[8][8];
        int cover_b[8][8] = {};
        for (int i = 0; i < 2; ++i) {
          for (int lane = 0; lane < 32; ++lane) {
            const int k = mma_b_k(lane, i), n = mma_b_n(lane);
            address[lane] = strip_c_index(p, 8 * nt + n, k0 + k);
            b[k][n] = sm.read(address[lane]);
            ++cover_b[k][n];
          }
          stats[kConflictB] += strip_bank_conflicts(address);
        }
        for (int k = 0; k < 8; ++k)
          for (int n = 0; n < 8; ++n) stats[kFragmentErrors] += cover_b[k][n] != 1;
        for (int lane = 0; lane < 32; ++lane) {
          for (int i = 0; i < 4; ++i) {
            const int r = mma_c_row(lane, i), n = mma_c_n(lane, i);
            float lo_terms = 0, hi_terms = 0;
            for (int k = 0; k < 8; ++k) {
              float a_hi, a_lo, b_hi, b_lo;
              split_operand(a[r][k], three, a_hi, a_lo);
              split_operand(b[k][n], three, b_hi, b_lo);
              lo_terms += a_lo * b_hi + a_hi * b_lo;
              hi_terms += a_hi * b_hi;
            }
            float& c = acc[(nt * 32 + lane) * 4 + i];
            c += lo_terms;
            c += hi_terms;
          }
        }
      }
    }
    for (int nt = 0; nt < kNTiles; ++nt) {
      int cover_c[16][8] = {};
      for (int i = 0; i < 4; ++i) {
        for (int lane = 0; lane < 32; ++lane) {
          const int r = mma_c_row(lane, i), n = mma_c_n(lane, i);
          address[lane] = strip_p_index(p, 8 * nt + n, row0 + r);
          sm.write(address[lane], acc[(nt * 32 + lane) * 4 + i]);
          ++cover_c[r][n];
        }
        stats[kConflictStore] += strip_bank_conflicts(address);
      }
      for (int r = 0; r < 16; ++r)
        for (int n = 0; n < 8; ++n) stats[kFragmentErrors] += cover_c[r][n] != 1;
    }
  }
}

template <int KT, typename scalar_t>
void model_strips(const scalar_t* x, const float* cond, const scalar_t* bias, scalar_t* y,
                  const Conv1dGeometry& g, const StripPlan& p, std::vector<int64_t>& stats) {
  const bool mma = p.precision != int(StripPrecision::kFma);
  const bool three = p.precision == int(StripPrecision::kTf32x3);
  const int threads = int(p.threads), warps = threads / 32;
  constexpr int kLines = strip_lines_per_thread(KT);
  SharedModel sm{std::vector<float>(p.shared_floats), std::vector<char>(p.shared_floats), &stats[kUnwritten]};
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
      // bank conflicts of the walkers' P reads, lanes in lockstep: iteration i reads column
      // start(lane) + i of the lane's line
      for (int warp = 0; mma && warp < warps; ++warp) {
        for (int kk = 0; kk < kLines; ++kk) {
          for (int i = 0; i < kStripColumns; ++i) {
            int64_t address[32];
            bool any = false;
            for (int lane = 0; lane < 32; ++lane) {
              const auto& w = walkers[kk * threads + warp * 32 + lane];
              const int v = std::max(v0, w.v_next) + i;
              const bool reads = active[kk * threads + warp * 32 + lane] && w.v_next <= v &&
                                 v < std::min(v0 + kStripColumns, w.v_end + 1);
              const int64_t row = (w.prow - w.phase * p.phase_rows) * p.line_step + w.phase;  // logical
              address[lane] =
                  reads ? strip_p_index(p, v - v0, strip_phys_row(p, row + (v - w.v_next) * g.dilation)) : -1;
              any |= reads;
            }
            if (!any) continue;
            ++stats[kWalkReads];
            stats[kConflictWalk] += strip_bank_conflicts(address);
          }
        }
      }
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
  SharedModel sm{std::vector<float>(p.shared_floats), std::vector<char>(p.shared_floats), &stats[kUnwritten]};
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
  const std::optional<Tensor> bias_c =
      bias.has_value() ? std::optional<Tensor>(as_contiguous(*bias)) : std::nullopt;
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
      const auto run = [&](auto ring_tag) {
        model_strips<decltype(ring_tag)::value>(x.const_data_ptr<scalar_t>(), cond.const_data_ptr<float>(),
                                                bias_ptr, y.mutable_data_ptr<scalar_t>(), g, p, stats);
      };
      const int kt = strip_ring_template(p.ring);
      if (p.window) {
        const auto window = [&](auto ls_tag) {
          model_window<decltype(ls_tag)::value>(x.const_data_ptr<scalar_t>(), cond.const_data_ptr<float>(), bias_ptr,
                                                y.mutable_data_ptr<scalar_t>(), g, p, stats);
        };
        if (p.line_step == 1) window(std::integral_constant<int, 1>{});
        else window(std::integral_constant<int, 2>{});
      } else if (kt == 4) {
        run(std::integral_constant<int, 4>{});
      } else if (kt == 8) {
        run(std::integral_constant<int, 8>{});
      } else {
        run(std::integral_constant<int, 16>{});
      }
    }
  });
  Tensor stats_t = torch::stable::new_empty(x, {kStatCount}, ScalarType::Long);
  int64_t* out = stats_t.mutable_data_ptr<int64_t>();
  for (int i = 0; i < kStatCount; ++i) out[i] = stats[i];
  return {y, stats_t};
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(wsnet_ext, CPU, m) {
  m.impl("ws_conv1d_strip_model", TORCH_BOX(&ws_conv1d_strip_model_cpu));
}

}  // namespace wsnet
