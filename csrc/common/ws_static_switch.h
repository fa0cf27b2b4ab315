// A run-time choice turned into a compile-time constant, for kernels templated on it (the strip
// kernels' ring size and precision, the window walk's line step), in the spirit of causal-conv1d's
// static_switch.h, but as a function: with_constant<4, 8, 16>(ring, [&](auto kt) {
// launch(kernel<decltype(kt)::value>); }) calls the lambda with std::integral_constant<int, V> for
// the V equal to the value. A value outside the list is a bug in a plan: an error, never a guess.
#pragma once

#include <type_traits>

#include "common/ws_stable.h"

namespace wsnet {

template <int... Values, typename Body>
void with_constant(int value, Body&& body) {
  const bool found = ((value == Values ? (body(std::integral_constant<int, Values>{}), true) : false) || ...);
  WS_CHECK(found, "wsnet_ext internal error: no kernel instantiated for the plan value ", value);
}

}  // namespace wsnet
