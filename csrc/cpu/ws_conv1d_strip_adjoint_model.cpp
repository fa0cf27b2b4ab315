// Host model of the fused CUDA strip backward (cuda/ws_conv1d_strip_adjoint_kernel.cuh): the same
// plan, frames, walkers, products and partial buffer (ws_conv1d_strip_adjoint.h), run block by
// block and thread by thread on the CPU. Test-only: op wsnet_ext::ws_conv1d_strip_adjoint_model.
// Returns (grad_input, grad_condensed, int64 stats): 0 Ru, 1 strips, 2 lines, 3 ring K, 4 shared
// bytes, 5 grid, 6 reads of shared memory not written in this tile (must be 0), 7 blocks that took
// the NaN/Inf path.
#include <cmath>
#include <vector>

#include "../ws_conv1d_op_args.h"
#include "../ws_conv1d_strip_adjoint.h"
#include "../ws_stable.h"

namespace wsnet {
namespace {

template <int KT, typename scalar_t>
void model_adjoint(const scalar_t* gy, const scalar_t* x, const float* cond, scalar_t* grad_input,
                   float* partials, const Conv1dGeometry& g, const AdjointPlan& p, bool want_input,
                   bool want_condensed, std::vector<int64_t>& stats) {
  const int threads = int(p.threads), mc = int(g.condensed_channels);
  std::vector<float> smem(p.shared_floats);
  std::vector<char> written(p.shared_floats);
  const auto put_shared = [&](int64_t i, float v) { smem.at(i) = v; written.at(i) = 1; };
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
      std::fill(written.begin(), written.end(), 0);
      for (int k = 0; k < own_rows * mc; ++k) {  // fold the strip's own rows (§2.1)
        const int r = k % own_rows, j = k / own_rows;
        put_shared(p.f_offset + r * mc + j, folded_input<float>(x_b, g, j, g.input_time(u0 + r)));
        put_shared(p.g_offset + r * mc + j, 0.f);
      }
      for (int tid = 0; tid < threads; ++tid)
        for (int kk = 0; kk < kAdjointLinesPerThread; ++kk)
          active[kk * threads + tid] = t_count > 0 &&
              adjoint_walker_setup(p, g, tid + kk * threads, int(t_count), walkers[kk * threads + tid]);
      bool nonfinite = false;  // sticky: once met, every later tile is made pointwise
      for (int64_t ct = 0; ct < p.col_tiles; ++ct) {
        const int v0 = int(ct * kStripColumns);
        std::fill(written.begin() + p.c_offset, written.begin() + p.g_offset, 0);  // stale slab and dP
        for (int k = 0; k < kStripColumns * mc; ++k) {
          const int vl = k % kStripColumns, j = k / kStripColumns, v = v0 + vl;
          put_shared(p.c_offset + vl * mc + j, v < g.condensed_len ? cond[j * g.condensed_len + v] : 0.f);
        }
        for (int k = 0; k < kStripColumns * int(p.ld_p); ++k) put_shared(p.p_offset + k, 0.f);
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
                           if (r >= own0 && r < own0 + own_rows)
                             put_shared(p.p_offset + (v - v0) * p.ld_p + (r - own0), value);
                         });
          }
        }
        if (nonfinite) {
          for (int k = 0; k < own_rows * kStripColumns; ++k) {
            const int r = k % own_rows, vl = k / own_rows;
            if (v0 + vl < g.condensed_len)
              put_shared(p.p_offset + vl * p.ld_p + r, adjoint_point_value(gy_b, g, u0 + r, v0 + vl));
          }
        }
        for (int64_t i = p.c_offset; i < p.g_offset; ++i) {  // the products read only written words
          if (i >= p.p_offset && ((i - p.p_offset) % p.ld_p) >= own_rows) continue;
          stats[6] += !written[i];
        }
        for (int tid = 0; tid < threads; ++tid) {
          if (want_input) adjoint_accumulate_grad_f(smem.data(), p, mc, own_rows, tid, threads);
          if (want_condensed) adjoint_accumulate_partial(smem.data(), p, g, own_rows, v0, partial, tid, threads);
        }
      }
      stats[7] += nonfinite;
      if (want_input) {  // grad_input of every channel repeat: the strip's unpadded rows
        for (int k = 0; k < own_rows * mc; ++k) {
          const int r = k % own_rows, j = k / own_rows;
          const int64_t i = g.input_time(u0 + r);
          if (i < 0) continue;
          for (int64_t c = 0; c < g.in_channels / mc; ++c) {
            grad_input[(b * g.in_channels + c * mc + j) * g.length + i] =
                static_cast<scalar_t>(smem[p.g_offset + r * mc + j]);
          }
        }
      }
    }
  }
}

std::tuple<Tensor, Tensor, Tensor> ws_conv1d_strip_adjoint_model_cpu(
    const Tensor& grad_output, const Tensor& input, const Tensor& condensed, int64_t kernel_size,
    int64_t sample_stride, int64_t channel_repeat, int64_t stride, IntArray padding, int64_t dilation,
    std::vector<bool> output_mask, int64_t shared_limit, int64_t max_grid) {
  const Conv1dGeometry g = make_conv1d_backward_geometry(grad_output, input, condensed, kernel_size,
                                                         sample_stride, channel_repeat, stride,
                                                         padding, dilation, output_mask);
  WS_CHECK(input.scalar_type() != ScalarType::Double,
           "ws_conv1d_strip_adjoint_model: the fused backward takes float32, float16 or bfloat16, got float64");
  const AdjointPlan p = choose_adjoint_plan(g, shared_limit, max_grid);
  WS_CHECK(p.rows > 0, "ws_conv1d_strip_adjoint_model: the fused backward does not fit this shape (ring K = ",
           "ceil(L / (dn*S)) <= 8, frame lines <= 768, shared memory); does not fit");
  const Tensor gy = as_contiguous(grad_output), x = as_contiguous(input);
  const Tensor cond = as_contiguous(to_dtype(condensed, ScalarType::Float));
  Tensor grad_input = torch::stable::new_zeros(x, x.sizes());
  Tensor partials = torch::stable::new_zeros(cond, {p.grid, g.condensed_channels, g.condensed_len});
  std::vector<int64_t> stats(8, 0);
  stats[0] = p.rows;
  stats[1] = p.strips;
  stats[2] = p.lines;
  stats[3] = p.ring;
  stats[4] = p.shared_floats * 4;
  stats[5] = p.grid;
  WS_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ws_conv1d_strip_adjoint_model", [&] {
    if constexpr (!std::is_same_v<scalar_t, double>) {
      const auto run = [&](auto ring_tag) {
        model_adjoint<decltype(ring_tag)::value>(gy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                                 cond.const_data_ptr<float>(), grad_input.mutable_data_ptr<scalar_t>(),
                                                 partials.mutable_data_ptr<float>(), g, p, output_mask[0],
                                                 output_mask[1], stats);
      };
      if (p.ring <= 4) run(std::integral_constant<int, 4>{});
      else run(std::integral_constant<int, 8>{});
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
  Tensor stats_t = torch::stable::new_empty(x, {8}, ScalarType::Long);
  for (int i = 0; i < 8; ++i) stats_t.mutable_data_ptr<int64_t>()[i] = stats[i];
  return {grad_input, to_dtype(grad_condensed, input.scalar_type()), stats_t};
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(wsnet_ext, CPU, m) {
  m.impl("ws_conv1d_strip_adjoint_model", TORCH_BOX(&ws_conv1d_strip_adjoint_model_cpu));
}

}  // namespace wsnet
