// SPDX-License-Identifier: MIT
// simd/decode.hpp: rows_dot_keys and rows_accumulate_values on every ISA the build compiled and
// the CPU runs, against long-double references: 1-4 rows, odd sizes and tails, strided rows,
// misaligned pointers, and guards after every output.
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/decode.hpp>

#include "support/guarded.hpp"
#include "support/isa_list.hpp"
#include "support/random.hpp"

TEMPLATE_TEST_CASE("rows_dot_keys and rows_accumulate_values against long double",
                   "[simd][decode]", float, double) {
  using T = TestType;
  const long double e = std::numeric_limits<T>::epsilon();
  auto rng = xfmr_test::make_rng(811);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    constexpr std::size_t W = xfmr::simd::Vec<T, Isa>::lanes;
    for (const std::size_t d : {std::size_t(1), W - 1 + (W == 1), 2 * W, 3 * W + 1, std::size_t(37)}) {
      for (const std::size_t nk : {std::size_t(1), std::size_t(2), std::size_t(17), std::size_t(40)}) {
        for (std::size_t rows = 1; rows <= xfmr::simd::kDecodeRows; ++rows) {
          INFO("isa " << Isa::name << ", d " << d << ", nk " << nk << ", rows " << rows);
          // Strided rows: q and k rows d + 3 apart (a head cut from a wider matrix), s and p
          // rows nk + 2 apart, acc rows d + 1 apart; every buffer 1 element off a 64-byte line.
          const std::size_t ldq = d + 3, ldk = d + 5, lds = nk + 2, lda = d + 1;
          const std::vector<T> q = xfmr_test::uniform_vector<T>(rng, rows * ldq, -2, 2);
          xfmr_test::Guarded<T> k(nk * ldk, 1), s(rows * lds, 1), acc(rows * lda, 1);
          const std::vector<T> k0 = xfmr_test::uniform_vector<T>(rng, nk * ldk, -2, 2);
          for (std::size_t i = 0; i < nk * ldk; ++i) k[i] = k0[i];
          for (std::size_t i = 0; i < rows * lds; ++i) s[i] = T(-7);
          xfmr::simd::rows_dot_keys<Isa, T>(rows, q.data(), ldq, k.data(), ldk, nk, d, s.data(),
                                            lds);
          long bad = 0, pad = 0;
          for (std::size_t r = 0; r < rows; ++r) {
            for (std::size_t j = 0; j < nk; ++j) {
              long double want = 0, mag = 0;
              for (std::size_t p = 0; p < d; ++p) {
                want += static_cast<long double>(q[r * ldq + p]) * k0[j * ldk + p];
                mag += std::fabs(static_cast<long double>(q[r * ldq + p]) * k0[j * ldk + p]);
              }
              bad += !(std::fabs(s[r * lds + j] - want) <= (d + 2) * e * mag);
            }
            for (std::size_t j = nk; j < lds; ++j) pad += !(s[r * lds + j] == T(-7));
          }
          CHECK(bad == 0);
          CHECK(pad == 0);
          CHECK(s.guards_intact());

          // acc_r += Σ_j p_r[j]·v_j, v = the k buffer read as nk rows of dv = d values.
          const std::vector<T> p = xfmr_test::uniform_vector<T>(rng, rows * lds, 0, 1);
          const std::vector<T> a0 = xfmr_test::uniform_vector<T>(rng, rows * lda, -1, 1);
          for (std::size_t i = 0; i < rows * lda; ++i) acc[i] = a0[i];
          xfmr::simd::rows_accumulate_values<Isa, T>(rows, p.data(), lds, k.data(), ldk, nk, d,
                                                     acc.data(), lda);
          bad = pad = 0;
          for (std::size_t r = 0; r < rows; ++r) {
            for (std::size_t c = 0; c < d; ++c) {
              long double want = a0[r * lda + c], mag = std::fabs(want);
              for (std::size_t j = 0; j < nk; ++j) {
                want += static_cast<long double>(p[r * lds + j]) * k0[j * ldk + c];
                mag += std::fabs(static_cast<long double>(p[r * lds + j]) * k0[j * ldk + c]);
              }
              bad += !(std::fabs(acc[r * lda + c] - want) <= (nk + 2) * e * mag);
            }
            for (std::size_t c = d; c < lda; ++c) pad += !(acc[r * lda + c] == a0[r * lda + c]);
          }
          CHECK(bad == 0);
          CHECK(pad == 0);
          CHECK(acc.guards_intact());
          CHECK(k.guards_intact());
        }
      }
    }
  });
}

TEST_CASE("rows_dot_keys: a NaN or infinity in a key reaches every row's score",
          "[simd][decode]") {
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    const std::size_t d = 11, nk = 3;
    std::vector<float> q(2 * d, 1.0f), k(nk * d, 0.5f), s(2 * nk, 0.0f);
    k[1 * d + 9] = std::numeric_limits<float>::quiet_NaN();
    k[2 * d + 10] = std::numeric_limits<float>::infinity();
    xfmr::simd::rows_dot_keys<Isa, float>(2, q.data(), d, k.data(), d, nk, d, s.data(), nk);
    for (std::size_t r = 0; r < 2; ++r) {
      INFO("isa " << Isa::name << ", row " << r);
      CHECK(s[r * nk] == Approx(5.5f));
      CHECK(std::isnan(s[r * nk + 1]));
      CHECK(std::isinf(s[r * nk + 2]));
    }
  });
}
