// What both host models of the strip kernels share (test-only): a block's shared memory with a
// written flag per word, and mma.sync m16n8k8 (TF32 or 3xTF32, float32 accumulate) emulated on
// the fragments the kernels hold, through the same fragment maps (strips/ws_conv1d_strips.h).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "strips/ws_conv1d_strips.h"

namespace wsnet {

// Shared memory of one block; reading a word not written since the last forget() counts as an
// unwritten read (stale data the kernel would use).
struct SharedModel {
  std::vector<float> value;
  std::vector<char> written;
  int64_t* unwritten;
  SharedModel(int64_t floats, int64_t* unwritten_count)
      : value(size_t(floats)), written(size_t(floats)), unwritten(unwritten_count) {}
  void write(int64_t i, float v) { value.at(i) = v; written.at(i) = 1; }
  float read(int64_t i) const {
    if (!written.at(i)) ++*unwritten;
    return value.at(i);
  }
  void forget(int64_t from, int64_t to) { std::fill(written.begin() + from, written.begin() + to, 0); }
  void forget_all() { forget(0, int64_t(written.size())); }
};

// (hi, lo) of an operand: the 3xTF32 split, or (tf32(a), 0) for one TF32 product.
inline void split_tf32(float a, bool three, float& hi, float& lo) {
  hi = round_to_tf32(a);
  lo = three ? round_to_tf32(a - hi) : 0.0f;
}

// acc[lane][i] += A . B for one m16n8k8 step: a[lane][i] sits at (mma_a_row, mma_a_k), b[lane][i]
// at (mma_b_k, mma_b_n), acc[lane][i] at (mma_c_row, mma_c_n); products summed as the kernels issue
// them (lo*hi + hi*lo first, then hi*hi). Returns how many elements of A, B and C the maps did not
// cover exactly once (0 for a correct map).
inline int emulate_mma(float (&acc)[32][4], const float (&a)[32][4], const float (&b)[32][2], bool three) {
  float A[16][8] = {}, B[8][8] = {};
  int cover_a[16][8] = {}, cover_b[8][8] = {}, cover_c[16][8] = {};
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i) {
      A[mma_a_row(lane, i)][mma_a_k(lane, i)] = a[lane][i];
      ++cover_a[mma_a_row(lane, i)][mma_a_k(lane, i)];
      ++cover_c[mma_c_row(lane, i)][mma_c_n(lane, i)];
    }
    for (int i = 0; i < 2; ++i) {
      B[mma_b_k(lane, i)][mma_b_n(lane)] = b[lane][i];
      ++cover_b[mma_b_k(lane, i)][mma_b_n(lane)];
    }
  }
  int errors = 0;
  for (int r = 0; r < 16; ++r)
    for (int k = 0; k < 8; ++k) errors += (cover_a[r][k] != 1) + (cover_c[r][k] != 1) + (r < 8 && cover_b[r][k] != 1);
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 4; ++i) {
      const int r = mma_c_row(lane, i), n = mma_c_n(lane, i);
      float lo_terms = 0, hi_terms = 0;
      for (int k = 0; k < 8; ++k) {
        float a_hi, a_lo, b_hi, b_lo;
        split_tf32(A[r][k], three, a_hi, a_lo);
        split_tf32(B[k][n], three, b_hi, b_lo);
        lo_terms += a_lo * b_hi + a_hi * b_lo;
        hi_terms += a_hi * b_hi;
      }
      acc[lane][i] += lo_terms;
      acc[lane][i] += hi_terms;
    }
  }
  return errors;
}

}  // namespace wsnet
