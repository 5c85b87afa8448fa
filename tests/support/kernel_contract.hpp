// SPDX-License-Identifier: MIT
// The placement contract of a raw row kernel (DESIGN.md §3), checked once for every kernel:
// whatever the misalignment of input and output, in place or not, at the end of a page, the
// kernel writes exactly its outputs (bit for bit the same values), leaves its input alone and
// touches nothing past either array.
#ifndef XFMR_TESTS_SUPPORT_KERNEL_CONTRACT_HPP
#define XFMR_TESTS_SUPPORT_KERNEL_CONTRACT_HPP

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/vec.hpp>

#include "guarded.hpp"
#include "page_guard.hpp"

namespace xfmr_test {

/// Element offsets from a 64-byte boundary that the contract tests use.
inline constexpr std::size_t kKernelOffsets[] = {0, 1, 3};

/// Sizes around the vector width of Isa: 0 … 4·lanes + 3 (every tail after 0 to 4 full
/// vectors, and the 2-vector unrolled paths), and one long odd size.
template <typename T, class Isa>
std::vector<std::size_t> kernel_sizes() {
  constexpr std::size_t W = xfmr::simd::Vec<T, Isa>::lanes;
  std::vector<std::size_t> sizes;
  for (std::size_t n = 0; n <= 4 * W + 3; ++n) sizes.push_back(n);
  sizes.push_back(1001);
  return sizes;
}

/// Bitwise equality of n values (NaN equals the same NaN).
template <typename T>
bool same_bits(const T* a, const T* b, std::size_t n) {
  return n == 0 || std::memcmp(a, b, n * sizeof(T)) == 0;
}

/// run(const T* x, T* y) -> T computes n_out outputs y from x0.size() inputs x (return 0 when the
/// kernel returns nothing). Checks, against one call on plain vectors: misaligned input and
/// output (every pair of kKernelOffsets), in place when `in_place` (then n_out == x0.size()),
/// and both arrays ending at an inaccessible page.
template <typename T, class Run>
void check_placement(const std::vector<T>& x0, std::size_t n_out, Run run, bool in_place) {
  const std::size_t n_in = x0.size();
  std::vector<T> want(n_out);
  const T r0 = run(x0.data(), want.data());
  for (const std::size_t ox : kKernelOffsets)
    for (const std::size_t oy : kKernelOffsets) {
      INFO("offsets x " << ox << ", y " << oy);
      Guarded<T> x(n_in, ox), y(n_out, oy);  // y is NaN-poisoned: every output must be written
      std::copy(x0.begin(), x0.end(), x.data());
      const T r = run(x.data(), y.data());
      CHECK(same_bits(&r, &r0, 1));
      CHECK(same_bits(want.data(), y.data(), n_out));
      CHECK(same_bits(x0.data(), x.data(), n_in));
      CHECK(x.guards_intact());
      CHECK(y.guards_intact());
    }
  if (in_place) {
    REQUIRE(n_out == n_in);
    for (const std::size_t o : kKernelOffsets) {
      INFO("in place, offset " << o);
      Guarded<T> xy(n_in, o);
      std::copy(x0.begin(), x0.end(), xy.data());
      const T r = run(xy.data(), xy.data());
      CHECK(same_bits(&r, &r0, 1));
      CHECK(same_bits(want.data(), xy.data(), n_out));
      CHECK(xy.guards_intact());
    }
  }
  PageEnd<T> px(n_in), py(n_out);
  std::copy(x0.begin(), x0.end(), px.data());
  const T r = run(px.data(), py.data());
  CHECK(same_bits(&r, &r0, 1));
  CHECK(same_bits(want.data(), py.data(), n_out));
}

}  // namespace xfmr_test

#endif  // XFMR_TESTS_SUPPORT_KERNEL_CONTRACT_HPP
