// Rows between the caller's (B, M, T) tensors and a tile's folded rows (docs/design.md §2.1), in
// the polyphase layout of ws_conv1d_polyphase.h: row r of phase p is input row
// phases*r + p - pad_left. Inline templates that ws_conv1d_isa.h builds once per ISA level: there
// the stride-2 reads and writes of two-phase layers (SoundNet's strided convolutions) become
// whole-vector loads and permutes, where the baseline build moved one float at a time (~11% of
// conv3's forward samples in a profile; cpu_kernels/HISTORY.md, session 18).
#pragma once

#include <algorithm>
#include <cstdint>

#include "tiles/cpu/ws_conv1d_polyphase.h"

namespace wsnet {
namespace tile {

// dst[r] = src[kStride * r] (kAdd: +=) for r in [begin, end).
template <int64_t kStride, bool kAdd, typename scalar_t, typename acc_t>
inline __attribute__((always_inline)) void read_row(acc_t* __restrict dst, const scalar_t* __restrict src,
                                                    int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const acc_t value = static_cast<acc_t>(src[kStride * r]);
    if (kAdd) dst[r] += value;
    else dst[r] = value;
  }
}

template <bool kAdd, typename scalar_t, typename acc_t>
inline __attribute__((always_inline)) void read_row(acc_t* dst, const scalar_t* src, int64_t stride,
                                                    int64_t begin, int64_t end) {
  if (stride == 1) read_row<1, kAdd>(dst, src, begin, end);
  else if (stride == 2) read_row<2, kAdd>(dst, src, begin, end);
  else if (kAdd) for (int64_t r = begin; r < end; ++r) dst[r] += static_cast<acc_t>(src[stride * r]);
  else for (int64_t r = begin; r < end; ++r) dst[r] = static_cast<acc_t>(src[stride * r]);
}

// fold[p*Mc + j][r] = sum_c x[c*Mc + j, phases*(row0 + r) + p - pad_left] (with one phase,
// fold[j][r] = sum_c xp[c*Mc + j, row0 + r]), zero in the padding and past `rows`; rows are `ld`
// apart.
template <typename scalar_t, typename acc_t>
inline __attribute__((always_inline)) void fold_rows(const scalar_t* x_b, const InputLayout& in, int64_t row0,
                                                     int64_t rows, int64_t ld, acc_t* fold) {
  const int64_t ph = in.phases;
  for (int64_t p = 0; p < ph; ++p) {
    const int64_t base = ph * row0 + p - in.pad_left;  // input row of r = 0
    const auto [r_begin, r_end] = rows_inside(in, base, rows);
    for (int64_t m = 0; m < in.channels; ++m) {
      const scalar_t* src = x_b + m * in.length + base;
      acc_t* dst = fold + (p * in.mc + m % in.mc) * ld;
      if (m < in.mc) {  // first repeat: write the row, zeros in the padding and past `rows`
        std::fill(dst, dst + r_begin, acc_t(0));
        read_row<false>(dst, src, ph, r_begin, r_end);
        std::fill(dst + r_end, dst + ld, acc_t(0));
      } else {
        read_row<true>(dst, src, ph, r_begin, r_end);
      }
    }
  }
}

// row[stride * r] = src[r] for r in [begin, end).
template <typename scalar_t, typename acc_t>
inline __attribute__((always_inline)) void write_row(scalar_t* row, const acc_t* src, int64_t stride,
                                                     int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) row[stride * r] = static_cast<scalar_t>(src[r]);
}

// grad_input[b, c*Mc + j, i] = grad_fold[p*Mc + j][r] for every repeat c, i = phases*(u0 + r) + p -
// pad_left inside [0, T). Two phases are written together where both are inside, so those stores
// are whole vectors.
template <typename scalar_t, typename acc_t>
inline __attribute__((always_inline)) void write_grad_rows(const acc_t* grad_fold, const InputLayout& in,
                                                           int64_t u0, int64_t rows, int64_t ld, scalar_t* gx_b) {
  const int64_t ph = in.phases;
  for (int64_t m = 0; m < in.channels; ++m) {
    scalar_t* row = gx_b + m * in.length + ph * u0 - in.pad_left;  // input row of r = 0, phase 0
    if (ph != 2) {
      for (int64_t p = 0; p < ph; ++p) {
        const auto [r_begin, r_end] = rows_inside(in, ph * u0 + p - in.pad_left, rows);
        write_row(row + p, grad_fold + (p * in.mc + m % in.mc) * ld, ph, r_begin, r_end);
      }
      continue;
    }
    const acc_t* __restrict src0 = grad_fold + (m % in.mc) * ld;
    const acc_t* __restrict src1 = grad_fold + (in.mc + m % in.mc) * ld;
    const auto [b0, e0] = rows_inside(in, 2 * u0 - in.pad_left, rows);
    const auto [b1, e1] = rows_inside(in, 2 * u0 + 1 - in.pad_left, rows);
    const int64_t lo = std::max(b0, b1), hi = std::max(lo, std::min(e0, e1));  // both phases inside
    write_row(row, src0, 2, b0, std::min(lo, e0));
    write_row(row, src0, 2, std::max(hi, b0), e0);
    write_row(row + 1, src1, 2, b1, std::min(lo, e1));
    write_row(row + 1, src1, 2, std::max(hi, b1), e1);
    scalar_t* __restrict out = row;
    for (int64_t r = lo; r < hi; ++r) {
      out[2 * r] = static_cast<scalar_t>(src0[r]);
      out[2 * r + 1] = static_cast<scalar_t>(src1[r]);
    }
  }
}

}  // namespace tile
}  // namespace wsnet
