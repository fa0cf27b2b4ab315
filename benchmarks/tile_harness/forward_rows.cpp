// The CPU forward's row-block tile (tile::forward_tile_by_rows, AVX-512, float, 4 vectors of rows)
// timed alone on one core, outside PyTorch: a stride-1 layer with Mc condensed channels (C = 1),
// N filters of L taps, sample stride 4, one tile of 2048 outputs. It prints the time per block of
// 4 condensed columns x 64 rows and checks every output against the definition in double
// (docs/design.md §2: y[n, t] = b[n] + sum_j sum_l fold[j][t + l] * condensed[j][n*S + l]).
// Without PyTorch's dispatch, threads and allocator around it, medians of 7 rounds agree within
// ~2% run to run here, where the whole op drifts ~10%: the tool for trying kernel variants
// (cpu_kernels/HISTORY.md, session 21). Build and run: benchmarks/tile_harness/run.sh.
//
//   forward_rows MC [N [L [Y_BUFFERS [REPEATS [LD_Y]]]]]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "tiles/cpu/ws_conv1d_tile_kernels.h"
#include "tiles/cpu/ws_conv1d_tiles.h"

using namespace wsnet;

__attribute__((target("arch=x86-64-v4"), noinline)) void forward_rows(const tile::Workspace<float>& w,
    const Conv1dGeometry& g, const float* bias, int64_t count, int64_t n_out, float* y, int64_t ld_y) {
  tile::forward_tile_by_rows<float, 64, 4>(w, g, bias, 0, count, 0, n_out, y, ld_y);
}

static int64_t arg(int argc, char** argv, int i, int64_t fallback) {
  if (argc <= i) return fallback;
  const int64_t value = std::strtoll(argv[i], nullptr, 10);
  if (value < 1) {
    std::fprintf(stderr, "argument %d expects an integer >= 1, got %s\n", i, argv[i]);
    std::exit(2);
  }
  return value;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MC [N [L [Y_BUFFERS [REPEATS [LD_Y]]]]]\n", argv[0]);
    return 2;
  }
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
      !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl")) {
    std::fprintf(stderr, "this processor has no AVX-512: the row-block tile is not built for it\n");
    return 3;
  }
  const int64_t mc = arg(argc, argv, 1, 1), n_out = arg(argc, argv, 2, 48), taps = arg(argc, argv, 3, 24);
  const int64_t y_buffers = arg(argc, argv, 4, 1), repeats = arg(argc, argv, 5, 200);
  constexpr int64_t kSampleStride = 4, kCount = 2048;
  const int64_t ld_y = std::max<int64_t>(arg(argc, argv, 6, 16001), kCount);
  Conv1dGeometry g{};
  g.batch = 1;
  g.in_channels = g.condensed_channels = mc;
  g.out_channels = n_out;
  g.kernel_size = taps;
  g.sample_stride = kSampleStride;
  g.stride = g.dilation = 1;
  g.condensed_len = (n_out - 1) * kSampleStride + taps;
  g.length = g.padded_len = kCount + taps - 1;
  g.out_len = kCount;
  const int64_t ld = forward_buffer_rows(g.tile_rows(0, kCount)), pad = tile::padded_rows(1);
  const int64_t fold_ld = tile::fold_stride(ld), lc = g.condensed_len;
  std::mt19937 gen(0);
  std::uniform_real_distribution<float> uniform(-1.f, 1.f);
  LineAlignedBuffer<float> fold(mc * fold_ld), column((tile::kColumnBlock + 1) * (pad + ld)),
      carry(tile::carry_size(lc));
  LineAlignedBuffer<int32_t> events(tile::events_size(lc));
  std::vector<float> cond_t((lc + tile::kColumnBlock - 1) / tile::kColumnBlock * tile::kColumnBlock * mc, 0.f);
  std::vector<float> bias(n_out);
  for (int64_t j = 0; j < mc; ++j) {  // the rows past the input are zero, as the fold leaves them
    for (int64_t r = 0; r < fold_ld; ++r) fold.get()[j * fold_ld + r] = r < g.length ? uniform(gen) : 0.f;
  }
  for (int64_t i = 0; i < lc * mc; ++i) cond_t[i] = uniform(gen);
  for (float& b : bias) b = uniform(gen);
  std::vector<std::vector<float>> ys(y_buffers, std::vector<float>(n_out * ld_y + 16, 0.f));
  const tile::Workspace<float> w{fold.get(), cond_t.data(), nullptr, column.get(), ld, 0, pad, fold_ld, carry.get(),
                                 events.get()};
  const double blocks = double(ld / 64) * double((lc + tile::kColumnBlock - 1) / tile::kColumnBlock);
  std::vector<double> ns_per_block;
  for (int round = 0; round < 7; ++round) {
    const auto begin = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < repeats; ++i) forward_rows(w, g, bias.data(), kCount, n_out, ys[i % y_buffers].data(), ld_y);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    ns_per_block.push_back(seconds / repeats / blocks * 1e9);
  }
  std::sort(ns_per_block.begin(), ns_per_block.end());
  // the definition, in double, for every output of the last buffer written
  const std::vector<float>& y = ys[(repeats - 1) % y_buffers];
  double worst = 0, scale = 0;
  for (int64_t n = 0; n < n_out; ++n) {
    for (int64_t t = 0; t < kCount; ++t) {
      double sum = bias[n];
      for (int64_t l = 0; l < taps; ++l) {
        for (int64_t j = 0; j < mc; ++j) {
          sum += double(fold.get()[j * fold_ld + t + l]) * double(cond_t[(n * kSampleStride + l) * mc + j]);
        }
      }
      worst = std::max(worst, std::fabs(sum - double(y[n * ld_y + t])));
      scale = std::max(scale, std::fabs(sum));
    }
  }
  const bool ok = worst <= 1e-5 * std::max(scale, 1.0) * std::sqrt(double(mc * lc));
  std::printf("mc %lld n %lld l %lld: ns per block median %.2f min %.2f; max error %.3g of %.3g: %s\n",
              (long long)mc, (long long)n_out, (long long)taps, ns_per_block[3], ns_per_block[0], worst, scale,
              ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
