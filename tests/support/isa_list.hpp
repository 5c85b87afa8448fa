// SPDX-License-Identifier: MIT
// Run a test body once per ISA this build can execute: scalar_isa always, native_isa when it
// differs (under XFMR_FORCE_SCALAR they are the same type and the body runs once).
#ifndef XFMR_TESTS_SUPPORT_ISA_LIST_HPP
#define XFMR_TESTS_SUPPORT_ISA_LIST_HPP

#include <type_traits>

#include <xfmr/simd/isa.hpp>

namespace xfmr_test {

/// f(scalar_isa{}), then f(native_isa{}) if native_isa is another type. Inside a generic lambda,
/// `using Isa = decltype(isa);` recovers the tag.
template <class F>
void for_each_isa(F&& f) {
  f(xfmr::simd::scalar_isa{});
  if constexpr (!std::is_same_v<xfmr::simd::native_isa, xfmr::simd::scalar_isa>)
    f(xfmr::simd::native_isa{});
}

}  // namespace xfmr_test

#endif  // XFMR_TESTS_SUPPORT_ISA_LIST_HPP
