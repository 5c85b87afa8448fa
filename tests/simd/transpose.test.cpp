// SPDX-License-Identifier: MIT
// simd::transpose: every ISA moves each element exactly once to its transposed place, at odd
// sizes around the register block, strided and misaligned, and writes nothing else.
#include <cstddef>

#include <catch2/catch.hpp>
#include <xfmr/simd/transpose.hpp>

#include "support/guarded.hpp"
#include "support/isa_list.hpp"

TEMPLATE_TEST_CASE("simd::transpose equals the element-wise definition on every ISA",
                   "[simd][transpose]", float, double) {
  using T = TestType;
  for (const std::size_t rows : {1, 3, 4, 7, 8, 9, 17}) {
    for (const std::size_t cols : {1, 4, 5, 8, 13, 64}) {
      for (const std::size_t offset : {0, 1, 3}) {
        const std::size_t lds = cols + 2, ldd = rows + 1;
        xfmr_test::Guarded<T> src(rows * lds, offset);
        for (std::size_t i = 0; i < rows * lds; ++i) src[i] = T(i) + T(0.5);
        xfmr_test::for_each_isa([&](auto isa) {
          using Isa = decltype(isa);
          INFO(Isa::name << " rows=" << rows << " cols=" << cols << " offset=" << offset);
          // The last row of dst ends at its last element, so the canaries sit right after it.
          xfmr_test::Guarded<T> dst((cols - 1) * ldd + rows, offset);
          xfmr::simd::transpose<Isa>(rows, cols, src.data(), std::ptrdiff_t(lds), dst.data(),
                                     std::ptrdiff_t(ldd));
          bool exact = true, untouched = true;
          for (std::size_t c = 0; c < cols; ++c)
            for (std::size_t r = 0; r < ldd && c * ldd + r < dst.size(); ++r) {
              const T got = dst[c * ldd + r];
              if (r < rows)
                exact = exact && got == src[r * lds + c];
              else
                untouched = untouched && got != got;  // padding keeps its NaN poison
            }
          CHECK(exact);
          CHECK(untouched);
          CHECK(dst.guards_intact());
        });
      }
    }
  }
}
