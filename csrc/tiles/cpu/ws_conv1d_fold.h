// Rows between the caller's (B, M, T) tensors and a tile's folded rows (docs/design.md §2.1), in
// the polyphase layout of ws_conv1d_polyphase.h: row r of phase p is input row
// phases*r + p - pad_left. Inline templates that ws_conv1d_isa.h builds once per ISA level: there
// the stride-2 reads and writes of two-phase layers (SoundNet's strided convolutions) become
// whole-vector loads and permutes, where the baseline build moved one float at a time (~11% of
// conv3's forward samples in a profile; cpu_kernels/HISTORY.md, session 18).
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

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

// A 64-byte vector of the compiler's vector extension (a build with narrower registers splits it).
template <typename T>
struct Vector64 {
  typedef T type __attribute__((vector_size(64)));
};

// dst[r] = sum over c in [0, repeats) of src[c * repeat_stride + kStride * r], c in order, for the
// kChunk rows from r0: the repeats summed in registers and stored once (one pass per repeat
// loaded, added and stored the whole row again: those read-modify-writes were ~40% of the fold's
// samples on conv3). The same sums in the same order as a pass per repeat.
template <int64_t kStride, int64_t kChunk, typename scalar_t, typename acc_t>
inline __attribute__((always_inline)) void sum_repeats_chunk(acc_t* __restrict dst, const scalar_t* __restrict src,
                                                             int64_t repeat_stride, int64_t repeats, int64_t r0) {
  if constexpr (std::is_same_v<scalar_t, acc_t>) {
    // 64-byte vectors of the compiler's vector extension (split into the build's registers), the
    // stride-2 rows as one two-vector shuffle: as plain loops GCC built some lanes from scalars
    using V = typename Vector64<acc_t>::type;
    using I [[maybe_unused]] = typename Vector64<std::conditional_t<sizeof(acc_t) == 8, int64_t, int32_t>>::type;
    constexpr int64_t kLanes = 64 / sizeof(acc_t), kVecs = kChunk / kLanes;
    static_assert(kChunk % kLanes == 0, "whole vectors");
    const auto read = [&](const acc_t* row, int64_t i) {
      V a;
      if constexpr (kStride == 1) {
        __builtin_memcpy(&a, row + r0 + i * kLanes, sizeof(V));
      } else {
#if defined(__clang__)  // no two-vector shuffle with an index vector (ws_conv1d_tile_kernels.h)
        for (int64_t l = 0; l < kLanes; ++l) a[l] = row[2 * (r0 + i * kLanes + l)];
#else
        I even;
        for (int64_t l = 0; l < kLanes; ++l) even[l] = 2 * l;
        V b;
        __builtin_memcpy(&a, row + 2 * (r0 + i * kLanes), sizeof(V));
        __builtin_memcpy(&b, row + 2 * (r0 + i * kLanes) + kLanes, sizeof(V));
        a = __builtin_shuffle(a, b, even);
#endif
      }
      return a;
    };
    V acc[kVecs];
    for (int64_t i = 0; i < kVecs; ++i) acc[i] = read(src, i);
    for (int64_t c = 1; c < repeats; ++c) {
      const acc_t* repeat = src + c * repeat_stride;
      for (int64_t i = 0; i < kVecs; ++i) acc[i] += read(repeat, i);
    }
    for (int64_t i = 0; i < kVecs; ++i) __builtin_memcpy(dst + r0 + i * kLanes, &acc[i], sizeof(V));
  } else {
    acc_t acc[kChunk];
    for (int64_t i = 0; i < kChunk; ++i) acc[i] = static_cast<acc_t>(src[kStride * (r0 + i)]);
    for (int64_t c = 1; c < repeats; ++c) {
      const scalar_t* repeat = src + c * repeat_stride;
      for (int64_t i = 0; i < kChunk; ++i) acc[i] += static_cast<acc_t>(repeat[kStride * (r0 + i)]);
    }
    for (int64_t i = 0; i < kChunk; ++i) dst[r0 + i] = acc[i];
  }
}

// Rows [begin, end) of dst from the repeats, whole chunks first (stride 1 and 2), then a pass per
// repeat over the rest: the sums of a pass per repeat, in the same order.
template <typename scalar_t, typename acc_t>
inline __attribute__((always_inline)) void sum_repeats(acc_t* dst, const scalar_t* src, int64_t stride,
                                                       int64_t repeat_stride, int64_t repeats, int64_t begin,
                                                       int64_t end) {
  constexpr int64_t kChunk = 64;
  int64_t r = begin;
  if (stride == 1) {
    for (; r + kChunk <= end; r += kChunk) sum_repeats_chunk<1, kChunk>(dst, src, repeat_stride, repeats, r);
  } else if (stride == 2) {
    // a chunk's last vector pair also loads the odd element after its last row: at least one row
    // must follow it, or that load could pass the end of the input
    for (; r + kChunk < end; r += kChunk) sum_repeats_chunk<2, kChunk>(dst, src, repeat_stride, repeats, r);
  }
  if (r == end) return;
  read_row<false>(dst, src, stride, r, end);
  for (int64_t c = 1; c < repeats; ++c) read_row<true>(dst, src + c * repeat_stride, stride, r, end);
}

// fold[p*Mc + j][r] = sum_c x[c*Mc + j, phases*(row0 + r) + p - pad_left] (with one phase,
// fold[j][r] = sum_c xp[c*Mc + j, row0 + r]), zero in the padding and past `rows`; rows are `ld`
// apart. The repeats c are added in order.
template <typename scalar_t, typename acc_t>
inline __attribute__((always_inline)) void fold_rows(const scalar_t* x_b, const InputLayout& in, int64_t row0,
                                                     int64_t rows, int64_t ld, acc_t* fold) {
  const int64_t ph = in.phases, repeats = in.channels / in.mc, repeat_stride = in.mc * in.length;
  for (int64_t p = 0; p < ph; ++p) {
    const int64_t base = ph * row0 + p - in.pad_left;  // input row of r = 0
    const auto [r_begin, r_end] = rows_inside(in, base, rows);
    for (int64_t j = 0; j < in.mc; ++j) {
      acc_t* dst = fold + (p * in.mc + j) * ld;
      std::fill(dst, dst + r_begin, acc_t(0));
      sum_repeats(dst, x_b + j * in.length + base, ph, repeat_stride, repeats, r_begin, r_end);
      std::fill(dst + r_end, dst + ld, acc_t(0));
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
