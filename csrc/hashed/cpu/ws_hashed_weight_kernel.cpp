// HashedNets' virtual weight on the CPU (docs/design.md §4): V[i] = xi(i) * w[h(i)], with the two
// hashes folded into one index into the signed table [w; -w] of 2B entries (B = numel(w)):
//   index[i] = h(i) when xi(i) = +1, B + h(i) when xi(i) = -1.
// Forward: the signed table (small, cache-resident) is built once, then one gather per entry, with
// no data-dependent branch. Backward: grad_w[k] = sum of grad_V over the entries pointing at k,
// minus that over the entries pointing at B + k: a scatter of grad_V into a 2B table, read in
// index order. The index is cut into a number of chunks that depends only on (numel, B), each
// chunk scatters into a table of its own, and the tables are added in chunk order, so the result
// is the same on every thread count (a first version, a gather-sum per bucket over a sorted index,
// was 2x slower than bincount: its reads of grad_V are random; benchmarks/results/hashed_weight_*).
#include <algorithm>
#include <atomic>
#include <vector>

#include "common/ws_stable.h"

namespace wsnet {
namespace {

// Records the first bad index a worker sees (workers must not throw).
struct FirstBad {
  std::atomic<bool> seen{false};
  std::atomic<int64_t> value{0};
  void record(int64_t v) {
    bool expected = false;
    if (seen.compare_exchange_strong(expected, true)) value.store(v);
  }
};

void check_index(const char* op, const Tensor& index) {
  WS_CHECK(index.scalar_type() == ScalarType::Long, op, ": expected an int64 index, got ",
           torch::headeronly::toString(index.scalar_type()));
  WS_CHECK(index.is_cpu(), op, ": expected the index on the cpu, got ", device_of(index));
}

void check_index_values(const char* op, const FirstBad& bad, int64_t buckets) {
  WS_CHECK(!bad.seen.load(), op, ": expected index values in [0, 2 * ", buckets, "), got ", bad.value.load());
}

// Chunks of the backward's scatter: each scatters at least as many entries as its table has slots
// (2B), so that zeroing and adding the tables costs at most about a third of the scatter; at most
// 16. A function of the sizes alone: the thread count never changes the sums' order.
int64_t scatter_chunks(int64_t numel, int64_t buckets) {
  return std::clamp<int64_t>(numel / std::max<int64_t>(2 * buckets, 1), 1, 16);
}

// The backward's chunk tables: a buffer per calling thread, kept between calls up to 32 MiB, so
// that a training step does not page-fault its way through fresh tables every time (a fresh 3 MB
// table cost about as much as the scatter itself); larger ones live in `own`, for this call only.
template <typename acc_t>
acc_t* scratch_tables(size_t count, std::vector<acc_t>& own) {
  constexpr size_t kKeep = (size_t{32} << 20) / sizeof(acc_t);
  thread_local std::vector<acc_t> kept;
  if (count > kKeep) {
    own.resize(count);
    return own.data();
  }
  if (kept.size() < count) kept.resize(count);
  return kept.data();
}

Tensor ws_hashed_weight_cpu(const Tensor& real_weight, const Tensor& index) {
  WS_CHECK(real_weight.dim() == 1 && real_weight.is_cpu(), "ws_hashed_weight: expected real_weight "
           "of shape (B,) on the cpu, got ", shape_of(real_weight), " on ", device_of(real_weight));
  check_index("ws_hashed_weight", index);
  const int64_t buckets = real_weight.numel();
  const Tensor w = as_contiguous(real_weight);
  const Tensor idx = as_contiguous(index);
  const std::vector<int64_t> shape(index.sizes().begin(), index.sizes().end());
  Tensor virtual_weight = torch::stable::new_empty(w, shape);
  FirstBad bad;
  WS_DISPATCH_FLOATING_TYPES(w.scalar_type(), "ws_hashed_weight", [&] {
    const scalar_t* src = w.const_data_ptr<scalar_t>();
    std::vector<scalar_t> table(2 * buckets);
    for (int64_t k = 0; k < buckets; ++k) {
      table[k] = src[k];
      table[buckets + k] = -src[k];
    }
    const uint64_t slots = static_cast<uint64_t>(2 * buckets);
    const scalar_t* signed_table = table.data();
    const int64_t* ix = idx.const_data_ptr<int64_t>();
    scalar_t* out = virtual_weight.mutable_data_ptr<scalar_t>();
    torch::stable::parallel_for(0, idx.numel(), 32768, [&](int64_t begin, int64_t end) {
      // branch-free: a bad index reads slot 0 and is reported after the loop
      bool all_in = true;
      for (int64_t i = begin; i < end; ++i) {
        const uint64_t k = static_cast<uint64_t>(ix[i]);
        const bool in = k < slots;
        out[i] = signed_table[in ? k : 0];
        all_in &= in;
      }
      if (!all_in) {
        for (int64_t i = begin; i < end; ++i) {
          if (static_cast<uint64_t>(ix[i]) >= slots) {
            bad.record(ix[i]);
            break;
          }
        }
      }
    });
  });
  check_index_values("ws_hashed_weight", bad, buckets);
  return virtual_weight;
}

Tensor ws_hashed_weight_backward_cpu(const Tensor& grad_virtual, const Tensor& index, int64_t buckets) {
  WS_CHECK(grad_virtual.is_cpu(), "ws_hashed_weight_backward: expected grad_virtual on the cpu, got ",
           device_of(grad_virtual));
  check_index("ws_hashed_weight_backward", index);
  WS_CHECK(index.sizes().equals(grad_virtual.sizes()), "ws_hashed_weight_backward: expected "
           "grad_virtual of the index's shape ", shape_of(index), ", got ", shape_of(grad_virtual));
  WS_CHECK(buckets >= 1 && buckets <= (int64_t{1} << 40), "ws_hashed_weight_backward: expected "
           "buckets in [1, 2^40], got ", buckets);
  const Tensor g = as_contiguous(grad_virtual);
  const Tensor idx = as_contiguous(index);
  Tensor grad = torch::stable::new_empty(g, {buckets});
  const int64_t numel = idx.numel();
  const int64_t chunks = scatter_chunks(numel, buckets);
  const int64_t slots = 2 * buckets;
  FirstBad bad;
  WS_DISPATCH_FLOATING_TYPES(g.scalar_type(), "ws_hashed_weight_backward", [&] {
    using acc_t = acc_type<scalar_t>;
    const scalar_t* src = g.const_data_ptr<scalar_t>();
    const int64_t* ix = idx.const_data_ptr<int64_t>();
    scalar_t* dst = grad.mutable_data_ptr<scalar_t>();
    std::vector<acc_t> own;
    acc_t* tables = scratch_tables<acc_t>(static_cast<size_t>(chunks * slots), own);
    // chunk c scatters entries [c * numel / chunks, (c + 1) * numel / chunks) in index order
    torch::stable::parallel_for(0, chunks, 1, [&](int64_t c_begin, int64_t c_end) {
      for (int64_t c = c_begin; c < c_end; ++c) {
        acc_t* table = tables + c * slots;
        std::fill(table, table + slots, acc_t(0));
        const int64_t end = (c + 1) * numel / chunks;
        for (int64_t i = c * numel / chunks; i < end; ++i) {
          const int64_t k = ix[i];
          if (static_cast<uint64_t>(k) < static_cast<uint64_t>(slots)) {
            table[k] += static_cast<acc_t>(src[i]);
          } else {
            bad.record(k);
          }
        }
      }
    });
    torch::stable::parallel_for(0, buckets, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        acc_t sum = 0;
        for (int64_t c = 0; c < chunks; ++c) sum += tables[c * slots + k] - tables[c * slots + buckets + k];
        dst[k] = static_cast<scalar_t>(sum);
      }
    });
  });
  check_index_values("ws_hashed_weight_backward", bad, buckets);
  return grad;
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(wsnet_ext, CPU, m) {
  m.impl("ws_hashed_weight", TORCH_BOX(&ws_hashed_weight_cpu));
  m.impl("ws_hashed_weight_backward", TORCH_BOX(&ws_hashed_weight_backward_cpu));
}

}  // namespace wsnet
