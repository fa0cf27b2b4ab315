// How the CPU kernels cut WSConv1d into tiles. A tile's working set (its P or dP rows, Lc wide,
// in the accumulation type) is sized to stay in a core's L2 cache; the halo of (L-1)*d rows
// that neighbouring tiles share is kept small next to the tile. Tiles depend on shapes only.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../ws_conv1d_geometry.h"

namespace wsnet {

constexpr int64_t kTileBytes = 256 * 1024;  // target working set of one tile
constexpr int64_t kMaxReductionGroups = 64;  // partial sums of grad_condensed

struct TileSplit {
  int64_t tile;             // outputs (forward) or input rows (backward) per tile
  int64_t tiles_per_batch;  // ceil(extent / tile)
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Rows of the working set: fill kTileBytes, but at least 4 halos so recomputation stays <= 25%.
inline int64_t target_rows(const Conv1dGeometry& g, int64_t acc_bytes) {
  const int64_t by_cache = kTileBytes / std::max<int64_t>(1, g.condensed_len * acc_bytes);
  return std::max<int64_t>({by_cache, 4 * (g.halo_rows() + 1), 8});
}

// Forward: tiles of outputs; a tile of k outputs spans (k-1)*s + halo + 1 rows.
inline TileSplit forward_tiles(const Conv1dGeometry& g, int64_t acc_bytes) {
  const int64_t rows = target_rows(g, acc_bytes);
  int64_t tile = std::max<int64_t>(1, (rows - g.halo_rows() - 1) / g.stride + 1);
  tile = std::min(tile, g.out_len);
  return {tile, ceil_div(g.out_len, tile)};
}

// Backward: tiles of input rows; each also scans `halo` rows of segment starts above it.
inline TileSplit backward_tiles(const Conv1dGeometry& g, int64_t acc_bytes) {
  int64_t tile = std::max<int64_t>(1, target_rows(g, acc_bytes) - g.halo_rows());
  tile = std::min(tile, std::max<int64_t>(1, g.length));
  return {tile, ceil_div(g.length, tile)};
}

inline int64_t reduction_groups(int64_t tiles) {
  return std::max<int64_t>(1, std::min(tiles, kMaxReductionGroups));
}

// Tiles [group_begin(k), group_begin(k+1)) form reduction group k.
inline int64_t group_begin(int64_t group, int64_t groups, int64_t tiles) {
  return group * tiles / groups;
}

}  // namespace wsnet
