// What every host file of wsnet_ext takes from PyTorch: only the stable ABI (torch/csrc/stable,
// torch/headeronly and the C shims), built with TORCH_TARGET_VERSION = torch 2.10, so one binary
// loads on every torch from 2.10 on (docs/design.md, "Build"). Nothing here may include ATen or c10.
#pragma once

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/BFloat16.h>
#include <torch/headeronly/util/Exception.h>
#include <torch/headeronly/util/Half.h>

#include <cstdint>
#include <sstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace wsnet {

using Tensor = torch::stable::Tensor;
using ScalarType = torch::headeronly::ScalarType;
using IntArray = torch::headeronly::IntHeaderOnlyArrayRef;

// The accumulation type of a storage type: float for the 16-bit floats, the type itself otherwise
// (what ATen calls opmath_type).
template <typename scalar_t>
using acc_type = std::conditional_t<std::is_same_v<scalar_t, c10::Half> ||
                                        std::is_same_v<scalar_t, c10::BFloat16>,
                                    float, scalar_t>;

inline ScalarType acc_scalar_type(ScalarType t) {
  return t == ScalarType::Double ? ScalarType::Double : ScalarType::Float;
}

// "[2, 3, 4]": a shape for error messages.
inline std::string shape_of(IntArray sizes) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < sizes.size(); ++i) out << (i ? ", " : "") << sizes[i];
  out << "]";
  return out.str();
}
inline std::string shape_of(const Tensor& t) { return shape_of(t.sizes()); }

inline std::string device_of(const Tensor& t) {
  std::ostringstream out;
  if (t.is_cuda()) out << "cuda:" << t.get_device_index();
  else if (t.is_cpu()) out << "cpu";
  else out << "another device";
  return out.str();
}

// Each torch::stable op is a boxed call through the dispatcher (a few microseconds): skip the
// ones that would return their input unchanged.
inline Tensor as_contiguous(const Tensor& t) {
  return t.is_contiguous() ? t : torch::stable::contiguous(t);
}
inline std::optional<Tensor> as_contiguous(const std::optional<Tensor>& t) {
  return t.has_value() ? std::optional<Tensor>(as_contiguous(*t)) : std::nullopt;
}
inline Tensor to_dtype(const Tensor& t, ScalarType dtype) {
  return t.scalar_type() == dtype ? t : torch::stable::to(t, dtype);
}

inline bool same_device(const Tensor& a, const Tensor& b) {
  return a.is_cuda() == b.is_cuda() && a.is_cpu() == b.is_cpu() &&
         (!a.is_cuda() || a.get_device_index() == b.get_device_index());
}

// The four floating types every kernel takes: runs body() with `scalar_t` naming the element type.
// (A function, not ATen's macro: a CUDA launch's <<<a, b>>> commas would split a macro argument.)
#define WS_DISPATCH_FLOATING_TYPES(TYPE, NAME, ...)                           \
  ::wsnet::dispatch_floating(TYPE, NAME, [&](auto ws_type_tag) {              \
    using scalar_t [[maybe_unused]] = decltype(ws_type_tag);                  \
    return (__VA_ARGS__)();                                                   \
  })

template <typename F>
decltype(auto) dispatch_floating(ScalarType type, const char* name, F&& run) {
  switch (type) {
    case ScalarType::Double: return run(double{});
    case ScalarType::Float: return run(float{});
    case ScalarType::Half: return run(c10::Half{});
    case ScalarType::BFloat16: return run(c10::BFloat16{});
    default:
      throw std::runtime_error(std::string(name) + ": expected a floating dtype (float16, "
                               "bfloat16, float32, float64), got " + torch::headeronly::toString(type));
  }
}

// A check at the ops' boundary: a RuntimeError in Python whose message says what was expected
// and what was given. (The Python wrappers check first, with ValueErrors; docs/design.md.)
#define WS_CHECK(cond, ...)                                                    \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::ostringstream ws_check_message;                                     \
      wsnet::detail::append(ws_check_message, __VA_ARGS__);                    \
      throw std::runtime_error(ws_check_message.str());                        \
    }                                                                          \
  } while (false)

namespace detail {
template <typename... Args>
void append(std::ostringstream& out, const Args&... args) {
  ((out << args), ...);
}
}  // namespace detail

}  // namespace wsnet
