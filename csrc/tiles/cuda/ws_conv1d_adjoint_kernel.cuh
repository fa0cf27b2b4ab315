// The adjoint of the gather (docs/design.md §2 backward) on CUDA: dP[b, u, v], the sum of grad_output
// over every segment through (u, v), stored transposed as dpt (bc, Lc, Tp) so that consecutive
// threads (rows u) write consecutive addresses.
//
// adjoint_stream_kernel: a block owns a run of rows of one batch row plus a halo of (L-1)*d rows
// above, and sweeps the columns v. With G(v, u) = grad_output[n, t] where v = n*S and u = t*s
// (else 0), dP is a box sum of length L along each sampling line:
//   D_v(u) = D_{v-1}(u - d) + G(v, u) - G(v - L, u - L*d)
// Lines are clipped at the block's first row and G is read only inside the block, so a row gets
// exactly its L terms once it lies at least (L-1)*d rows below the block's top: only those rows
// are written. A block that meets a NaN or Inf in grad_output redoes its rows pointwise
// (adjoint_point), since the running sum would carry it along the whole line.
#pragma once

#include "common/ws_conv1d_geometry.h"

namespace wsnet {

// dP[b, u, v] by its definition: the taps l = v - n*S (l = v mod S, stepping by S) whose row
// u - l*d starts an output (a multiple of s). (l*d) mod s is stepped rather than divided.
template <typename scalar_t, typename acc_t>
__device__ inline acc_t adjoint_point(const scalar_t* __restrict__ gy, const Conv1dGeometry& g,
                                      int64_t b, int64_t u, int64_t v) {
  // S and s are < 2^31 (the op's checks); the residues mod s stay int64 (their sums reach 2s)
  const int64_t S = g.sample_stride, s = g.stride;
  const int64_t l0 = v % S, step_mod = (S * g.dilation) % s;
  const int64_t u_mod = u % s;
  int64_t ld_mod = (l0 * g.dilation) % s;
  acc_t sum = 0;
  for (int64_t l = l0; l < g.kernel_size && l <= v; l += S) {
    const int64_t row = u - l * g.dilation;  // segment start row t*s
    if (row < 0) break;
    if (ld_mod == u_mod) {
      const int64_t n = (v - l) / S, t = row / s;
      if (n < g.out_channels && t < g.out_len) {
        sum += static_cast<acc_t>(gy[(b * g.out_channels + n) * g.out_len + t]);
      }
    }
    ld_mod += step_mod;
    if (ld_mod >= s) ld_mod -= s;
  }
  return sum;
}

// The fallback (a halo too tall for one block): one thread per element of dpt.
template <typename scalar_t, typename acc_t>
__global__ void adjoint_gather_kernel(const scalar_t* __restrict__ gy, acc_t* __restrict__ dpt,
                                      Conv1dGeometry g, int64_t b0, int64_t bc) {
  const int64_t total = bc * g.condensed_len * g.padded_len;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += int64_t(blockDim.x) * gridDim.x) {
    const int64_t u = idx % g.padded_len;
    const int64_t v = (idx / g.padded_len) % g.condensed_len;
    const int64_t b = b0 + idx / (g.padded_len * g.condensed_len);
    dpt[idx] = adjoint_point<scalar_t, acc_t>(gy, g, b, u, v);
  }
}

struct AdjointTiles {
  int64_t threads;  // rows per block, halo included (a multiple of 32)
  int64_t halo;     // (L-1)*d rows above, read but not written
  int64_t u_tiles;  // ceil(Tp / (threads - halo))
};

// threads = 0: the halo leaves no room (use adjoint_gather_kernel).
inline AdjointTiles choose_adjoint_tiles(const Conv1dGeometry& g) {
  if (!narrow_ints_fit(g, 4096)) return {};  // the kernel narrows to int (a block holds <= 1024 rows)
  const int64_t halo = g.halo_rows();
  for (int64_t threads : {256, 512, 1024}) {
    if (2 * halo < threads) {
      return {threads, halo, (g.padded_len + threads - halo - 1) / (threads - halo)};
    }
  }
  return {};
}

template <typename scalar_t, typename acc_t>
__global__ void adjoint_stream_kernel(const scalar_t* __restrict__ gy, acc_t* __restrict__ dpt,
                                      Conv1dGeometry g, AdjointTiles tiles, int64_t b0, int64_t bc) {
  extern __shared__ __align__(16) unsigned char adjoint_raw[];
  acc_t* d_s = reinterpret_cast<acc_t*>(adjoint_raw);  // (2, threads): D of the last two columns
  const int r = threadIdx.x, width = static_cast<int>(tiles.threads), halo = static_cast<int>(tiles.halo);
  const int d = static_cast<int>(g.dilation), s = static_cast<int>(g.stride);
  const int S = static_cast<int>(g.sample_stride), L = static_cast<int>(g.kernel_size);
  const int lc = static_cast<int>(g.condensed_len);
  for (int64_t tile = blockIdx.x; tile < bc * tiles.u_tiles; tile += gridDim.x) {  // uniform
    const int64_t bb = tile / tiles.u_tiles;
    const int64_t u = (tile % tiles.u_tiles) * (width - halo) - halo + r;  // may be < 0 in the halo
    const scalar_t* gy_b = gy + (b0 + bb) * g.out_channels * g.out_len;
    // this row starts output t_here (-1: none); the row L*d above starts t_old (inside the block)
    const int64_t t_here = (u >= 0 && u % s == 0 && u / s < g.out_len) ? u / s : -1;
    const int64_t u_old = u - int64_t(L) * d;
    const int64_t t_old = (r >= L * d && u_old >= 0 && u_old % s == 0 && u_old / s < g.out_len) ? u_old / s : -1;
    const bool write = r >= halo && u < g.padded_len;
    int nonfinite = 0;
    int n_here = 0, n_old = 0;  // next filter whose first column n*S (and n*S + L) is due
    for (int v = 0; v < lc; ++v) {
      acc_t add = 0, sub = 0;
      if (v == n_here * S) {
        if (n_here < g.out_channels && t_here >= 0) add = static_cast<acc_t>(gy_b[n_here * g.out_len + t_here]);
        ++n_here;
      }
      if (v == n_old * S + L) {
        if (n_old < g.out_channels && t_old >= 0) sub = static_cast<acc_t>(gy_b[n_old * g.out_len + t_old]);
        ++n_old;
      }
      nonfinite |= !isfinite(add);
      const acc_t prev = (v > 0 && r >= d) ? d_s[((v - 1) & 1) * width + r - d] : acc_t(0);
      const acc_t value = prev + add - sub;
      d_s[(v & 1) * width + r] = value;
      if (write) dpt[(bb * g.condensed_len + v) * g.padded_len + u] = value;
      __syncthreads();  // D_v is complete before column v + 1 reads it
    }
    if (__syncthreads_or(nonfinite)) {  // uniform: redo this block's rows by the definition
      for (int v = 0; v < lc; ++v) {
        if (write) dpt[(bb * g.condensed_len + v) * g.padded_len + u] = adjoint_point<scalar_t, acc_t>(gy, g, b0 + bb, u, v);
      }
    }
  }
}

}  // namespace wsnet
