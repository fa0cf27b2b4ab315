// HashedNets' virtual weight on the CPU (docs/design.md §4): V[i] = xi(i) * w[h(i)], with the two
// hashes folded into one index into the signed table [w; -w] of 2B entries (B = numel(w)):
//   index[i] = h(i) when xi(i) = +1, B + h(i) when xi(i) = -1.
// The backward sums, for each bucket k, the gradients of the entries that point at k minus those
// that point at B + k. `order` lists the flat virtual indices sorted by their index (stable, so
// each segment is in index order) and `offsets` (2B + 1) bounds each of the 2B segments: a gather
// per bucket, in a fixed order, so the result does not depend on the thread count.
// The plan (index, order, offsets) is built once per layer in wsnet_ext/hashed.py.
#include <algorithm>
#include <atomic>
#include <vector>

#include "../ws_stable.h"

namespace wsnet {
namespace {

// The plan's shapes and dtypes, against a table of `buckets` entries and `numel` virtual weights.
void check_plan(const char* op, const Tensor& index, const Tensor& order, const Tensor& offsets,
                int64_t buckets, int64_t numel) {
  for (const Tensor* t : {&index, &order, &offsets}) {
    WS_CHECK(t->scalar_type() == ScalarType::Long, op, ": expected int64 index, order and offsets, got ",
             torch::headeronly::toString(t->scalar_type()));
    WS_CHECK(t->is_cpu(), op, ": expected index, order and offsets on the cpu, got ", device_of(*t));
  }
  WS_CHECK(index.numel() == numel && order.dim() == 1 && order.numel() == numel, op,
           ": expected index and order of ", numel, " entries (the virtual weight's), got ",
           shape_of(index), " and ", shape_of(order));
  WS_CHECK(offsets.dim() == 1 && offsets.numel() == 2 * buckets + 1, op,
           ": expected offsets of 2 * buckets + 1 = ", 2 * buckets + 1, " entries, got ", shape_of(offsets));
}

// Records the first bad value a worker sees (workers must not throw).
struct FirstBad {
  std::atomic<bool> seen{false};
  std::atomic<int64_t> value{0};
  void record(int64_t v) {
    bool expected = false;
    if (seen.compare_exchange_strong(expected, true)) value.store(v);
  }
};

Tensor ws_hashed_weight_cpu(const Tensor& real_weight, const Tensor& index, const Tensor& order,
                            const Tensor& offsets) {
  WS_CHECK(real_weight.dim() == 1 && real_weight.is_cpu(), "ws_hashed_weight: expected real_weight "
           "of shape (B,) on the cpu, got ", shape_of(real_weight), " on ", device_of(real_weight));
  const int64_t buckets = real_weight.numel();
  check_plan("ws_hashed_weight", index, order, offsets, buckets, index.numel());
  const Tensor w = as_contiguous(real_weight);
  const Tensor idx = as_contiguous(index);
  const std::vector<int64_t> shape(index.sizes().begin(), index.sizes().end());
  Tensor virtual_weight = torch::stable::new_empty(w, shape);
  FirstBad bad;
  WS_DISPATCH_FLOATING_TYPES(w.scalar_type(), "ws_hashed_weight", [&] {
    const scalar_t* table = w.const_data_ptr<scalar_t>();
    const int64_t* ix = idx.const_data_ptr<int64_t>();
    scalar_t* out = virtual_weight.mutable_data_ptr<scalar_t>();
    torch::stable::parallel_for(0, idx.numel(), 16384, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t k = ix[i];
        if (k >= 0 && k < buckets) {
          out[i] = table[k];
        } else if (k >= buckets && k < 2 * buckets) {
          out[i] = -table[k - buckets];
        } else {
          out[i] = scalar_t(0);
          bad.record(k);
        }
      }
    });
  });
  WS_CHECK(!bad.seen.load(), "ws_hashed_weight: expected index values in [0, 2 * ", buckets,
           "), got ", bad.value.load());
  return virtual_weight;
}

Tensor ws_hashed_weight_backward_cpu(const Tensor& grad_virtual, const Tensor& index,
                                     const Tensor& order, const Tensor& offsets) {
  WS_CHECK(grad_virtual.is_cpu(), "ws_hashed_weight_backward: expected grad_virtual on the cpu, got ",
           device_of(grad_virtual));
  WS_CHECK(offsets.dim() == 1 && offsets.numel() % 2 == 1, "ws_hashed_weight_backward: expected "
           "offsets of 2 * buckets + 1 entries, got ", shape_of(offsets));
  const int64_t buckets = (offsets.numel() - 1) / 2;
  const int64_t numel = index.numel();
  check_plan("ws_hashed_weight_backward", index, order, offsets, buckets, numel);
  WS_CHECK(index.sizes().equals(grad_virtual.sizes()), "ws_hashed_weight_backward: expected "
           "grad_virtual of the index's shape ", shape_of(index), ", got ", shape_of(grad_virtual));
  const Tensor g = as_contiguous(grad_virtual);
  const Tensor ord = as_contiguous(order);
  const Tensor off = as_contiguous(offsets);
  Tensor grad = torch::stable::new_empty(g, {buckets});
  FirstBad bad_order, bad_offsets;
  WS_DISPATCH_FLOATING_TYPES(g.scalar_type(), "ws_hashed_weight_backward", [&] {
    using acc_t = acc_type<scalar_t>;
    const scalar_t* src = g.const_data_ptr<scalar_t>();
    const int64_t* perm = ord.const_data_ptr<int64_t>();
    const int64_t* bound = off.const_data_ptr<int64_t>();
    scalar_t* dst = grad.mutable_data_ptr<scalar_t>();
    // the sum over one segment, with every position and value checked
    auto segment = [&](int64_t s) -> acc_t {
      const int64_t lo = bound[s], hi = bound[s + 1];
      if (lo < 0 || hi < lo || hi > numel) {
        bad_offsets.record(s);
        return acc_t(0);
      }
      acc_t sum = 0;
      for (int64_t j = lo; j < hi; ++j) {
        const int64_t i = perm[j];
        if (i < 0 || i >= numel) {
          bad_order.record(i);
          continue;
        }
        sum += static_cast<acc_t>(src[i]);
      }
      return sum;
    };
    torch::stable::parallel_for(0, buckets, 1024, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        dst[k] = static_cast<scalar_t>(segment(k) - segment(buckets + k));
      }
    });
  });
  WS_CHECK(!bad_offsets.seen.load(), "ws_hashed_weight_backward: expected offsets non-decreasing "
           "from 0 to ", numel, ", broken at segment ", bad_offsets.value.load());
  WS_CHECK(!bad_order.seen.load(), "ws_hashed_weight_backward: expected order values in [0, ", numel,
           "), got ", bad_order.value.load());
  WS_CHECK(buckets == 0 || (off.const_data_ptr<int64_t>()[0] == 0 &&
                            off.const_data_ptr<int64_t>()[2 * buckets] == numel),
           "ws_hashed_weight_backward: expected offsets from 0 to ", numel);
  return grad;
}

}  // namespace

STABLE_TORCH_LIBRARY_IMPL(wsnet_ext, CPU, m) {
  m.impl("ws_hashed_weight", TORCH_BOX(&ws_hashed_weight_cpu));
  m.impl("ws_hashed_weight_backward", TORCH_BOX(&ws_hashed_weight_backward_cpu));
}

}  // namespace wsnet
