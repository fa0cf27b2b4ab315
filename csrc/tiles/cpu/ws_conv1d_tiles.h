// How the CPU kernels cut WSConv1d into tiles of rows. A tile streams over the condensed
// filter's columns, so its working set is the folded input rows (Mc x rows) plus a few
// rows-long columns: rows are sized so that the fold fits a core's L2 cache, and kept at
// least 8 halos long so the (L-1)*d rows that neighbouring tiles share stay a small overhead.
// Tiles depend on the shapes only, never on the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>

#include "common/ws_conv1d_geometry.h"

namespace wsnet {

constexpr int64_t kFoldBytes = 128 * 1024;   // folded input rows of one tile
constexpr int64_t kMaxTileRows = 2048;
constexpr int64_t kMinTileRows = 256;
constexpr int64_t kMaxReductionGroups = 64;  // partial sums of grad_condensed
// backward: the columns of dP a tile holds at once (tile::kDpChunk + 1, ws_conv1d_tile_kernels.h)
// fill about kDpChunkBytes, a core's L1 data cache less the fold rows the products stream
constexpr int64_t kDpChunkColumns = 17;
constexpr int64_t kDpChunkBytes = 40 * 1024;
// backward: all reduction groups' scratch for grad_condensed together (each group holds lane
// accumulators and a partial sum per condensed element while it runs). Bounding the number of
// groups bounds it, whatever the thread count: no more groups than this budget allows run at once.
constexpr int64_t kReductionScratchBytes = int64_t(256) << 20;

struct TileSplit {
  int64_t tile;             // outputs (forward) or input rows (backward) per tile
  int64_t tiles_per_batch;  // ceil(extent / tile)
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A scratch buffer whose first element starts a cache line: the tiles' vectors then never straddle
// two lines (a 64-byte store that does cannot be forwarded to the load that reads it back).
template <typename T>
class LineAlignedBuffer {
 public:
  explicit LineAlignedBuffer(int64_t count) : raw_(new T[count + kLine / sizeof(T)]) {
    const auto address = reinterpret_cast<std::uintptr_t>(raw_.get());
    data_ = reinterpret_cast<T*>((address + kLine - 1) / kLine * kLine);
  }
  T* get() const { return data_; }

 private:
  static constexpr std::uintptr_t kLine = 64;
  std::unique_ptr<T[]> raw_;
  T* data_;
};

// Forward buffers' rows: whole register blocks of 64 rows, or of 16 for short tiles (small layers
// at batch 1: conv7 of SoundNet has 12 rows, which 64-row blocks would compute 5 times over).
constexpr int64_t kShortTileRows = 48;
inline int64_t forward_buffer_rows(int64_t rows) {
  const int64_t block = rows <= kShortTileRows ? 16 : 64;
  return ceil_div(rows, block) * block;
}

// acc_bytes: bytes of the accumulation type (4 for float, 8 for double) the tiles hold.
inline int64_t target_rows(const Conv1dGeometry& g, int64_t acc_bytes) {
  const int64_t by_cache = kFoldBytes / (acc_bytes * std::max<int64_t>(1, g.condensed_channels));
  const int64_t rows = std::clamp<int64_t>(by_cache, kMinTileRows, kMaxTileRows);
  return std::max<int64_t>(rows, 8 * (g.halo_rows() + 1));
}

// Forward: tiles of outputs; k outputs span (k-1)*s + halo + 1 rows.
inline TileSplit forward_tiles(const Conv1dGeometry& g, int64_t acc_bytes) {
  int64_t tile = std::max<int64_t>(1, (target_rows(g, acc_bytes) - g.halo_rows() - 1) / g.stride + 1);
  tile = std::min(tile, g.out_len);
  return {tile, ceil_div(g.out_len, tile)};
}

// Forward: with fewer than kForwardItems row tiles in the whole batch (batch 1, short inputs), the
// filters are split into groups too, so that small layers still spread over the threads; a group
// holds at least kMinGroupFilters filters (its sweep repeats up to L - S + 3 columns of the next
// and the fold of its rows: with 32-filter groups, conv3-5 at batch 1 lost 20-60% on one thread).
// Shapes only decide it, never the thread count.
constexpr int64_t kForwardItems = 8;
constexpr int64_t kMinGroupFilters = 128;
inline int64_t forward_filter_groups(const Conv1dGeometry& g, const TileSplit& split) {
  const int64_t row_items = g.batch * split.tiles_per_batch;
  if (row_items >= kForwardItems) return 1;
  return std::clamp<int64_t>(ceil_div(kForwardItems, std::max<int64_t>(row_items, 1)), 1,
                             std::max<int64_t>(1, g.out_channels / kMinGroupFilters));
}

// Backward: tiles of input rows whose chunk of dP columns (kDpChunkColumns of halo + rows) fills
// kDpChunkBytes; the halo rows of each column hold the segment starts above the tile. (`long`: 512
// rows; with the whole tile's dP in L2 it had 192, and the backward took ~10% longer.)
inline TileSplit backward_tiles(const Conv1dGeometry& g, int64_t acc_bytes) {
  const int64_t by_cache = kDpChunkBytes / (acc_bytes * kDpChunkColumns) - g.halo_rows();
  int64_t tile = std::max<int64_t>(by_cache / 64 * 64, 64);  // whole register blocks, no padding
  tile = std::min(tile, std::max<int64_t>(1, g.length));
  return {tile, ceil_div(g.length, tile)};
}

// Groups of at least 4 tiles (each group sums its lane accumulators once), at most 64, and no
// more than kReductionScratchBytes of scratch for all of them: `bytes_per_group` is what one group
// holds (its lane accumulators and its partial sum). Shapes only decide it, never the threads.
inline int64_t reduction_groups(int64_t tiles, int64_t bytes_per_group) {
  const int64_t by_memory = std::max<int64_t>(1, kReductionScratchBytes / std::max<int64_t>(1, bytes_per_group));
  return std::clamp<int64_t>(std::min(tiles / 4, by_memory), 1, kMaxReductionGroups);
}

// Tiles [group_begin(k), group_begin(k+1)) form reduction group k.
inline int64_t group_begin(int64_t group, int64_t groups, int64_t tiles) {
  return group * tiles / groups;
}

}  // namespace wsnet
