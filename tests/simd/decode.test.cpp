// SPDX-License-Identifier: MIT
// simd/decode.hpp: rows_dot_keys and rows_accumulate_values on every ISA the build compiled and
// the CPU runs, against long-double references: 1-4 rows, odd sizes and tails, strided rows,
// misaligned pointers, and guards after every output; bf16 K/V rows against the float kernels
// on the widened rows (the same bits) and NaN/inf in bf16 rows.
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/decode.hpp>

#include "support/guarded.hpp"
#include "support/page_guard.hpp"
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
      // nk: whole steps of 4 or 2 keys and tails of 1, 2 and 3 keys after them.
      for (const std::size_t nk : {std::size_t(1), std::size_t(2), std::size_t(7), std::size_t(11),
                                   std::size_t(17), std::size_t(40)}) {
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

TEST_CASE("rows_dot_keys and rows_accumulate_values on bf16 K/V rows: the float result on the "
          "widened rows", "[simd][decode][bf16]") {
  // A float q times a bf16 k is exact in float and the widening is exact, so the bf16 kernels
  // must give the same bits as the float kernels on the widened rows (same ISA), and both the
  // long-double bound. The bf16 rows end at a PROT_NONE page: a tail load reading one element
  // past the last row faults.
  auto rng = xfmr_test::make_rng(812);
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    const long double e = std::numeric_limits<float>::epsilon();
    for (const std::size_t d : {std::size_t(1), std::size_t(7), std::size_t(16), std::size_t(17),
                                std::size_t(37), std::size_t(133)}) {
      for (const std::size_t nk : {std::size_t(1), std::size_t(3), std::size_t(18)}) {
        for (std::size_t rows = 1; rows <= xfmr::simd::kDecodeRows; ++rows) {
          INFO("isa " << Isa::name << ", d " << d << ", nk " << nk << ", rows " << rows);
          // K rows d + 3 apart (odd: every other row starts 2 bytes off a 4-byte boundary).
          const std::size_t ldq = d + 1, ldk = d + 3, lds = nk + 1;
          const std::size_t kn = (nk - 1) * ldk + d;
          xfmr_test::PageEnd<xfmr::bf16> kh(kn);
          std::vector<float> kf(kn);
          const std::vector<float> k0 = xfmr_test::uniform_vector<float>(rng, kn, -2, 2);
          for (std::size_t i = 0; i < kn; ++i) {
            kh.data()[i] = xfmr::to_bf16(k0[i]);
            kf[i] = xfmr::to_float(kh.data()[i]);
          }
          const std::vector<float> q = xfmr_test::uniform_vector<float>(rng, rows * ldq, -2, 2);
          std::vector<float> s16(rows * lds, -7.0f), s32(rows * lds, -7.0f);
          xfmr::simd::rows_dot_keys<Isa>(rows, q.data(), ldq, kh.data(), ldk, nk, d, s16.data(),
                                         lds);
          xfmr::simd::rows_dot_keys<Isa>(rows, q.data(), ldq, kf.data(), ldk, nk, d, s32.data(),
                                         lds);
          long differ = 0, bad = 0;
          for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t j = 0; j < nk; ++j) {
              differ += !(s16[r * lds + j] == s32[r * lds + j]);
              long double want = 0, mag = 0;
              for (std::size_t p = 0; p < d; ++p) {
                const long double x = static_cast<long double>(q[r * ldq + p]) * kf[j * ldk + p];
                want += x;
                mag += std::fabs(x);
              }
              bad += !(std::fabs(s16[r * lds + j] - want) <= (d + 2) * e * mag);
            }
          CHECK(differ == 0);
          CHECK(bad == 0);
          CHECK(s16 == s32);  // the pad columns too

          const std::vector<float> p = xfmr_test::uniform_vector<float>(rng, rows * lds, 0, 1);
          const std::vector<float> a0 = xfmr_test::uniform_vector<float>(rng, rows * ldq, -1, 1);
          std::vector<float> acc16 = a0, acc32 = a0;
          xfmr::simd::rows_accumulate_values<Isa>(rows, p.data(), lds, kh.data(), ldk, nk, d,
                                                  acc16.data(), ldq);
          xfmr::simd::rows_accumulate_values<Isa>(rows, p.data(), lds, kf.data(), ldk, nk, d,
                                                  acc32.data(), ldq);
          CHECK(acc16 == acc32);
          bad = 0;
          for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < d; ++c) {
              long double want = a0[r * ldq + c], mag = std::fabs(want);
              for (std::size_t j = 0; j < nk; ++j) {
                const long double x = static_cast<long double>(p[r * lds + j]) * kf[j * ldk + c];
                want += x;
                mag += std::fabs(x);
              }
              bad += !(std::fabs(acc16[r * ldq + c] - want) <= (nk + 2) * e * mag);
            }
          CHECK(bad == 0);
        }
      }
    }
  });
}

TEST_CASE("rows_dot_keys and rows_accumulate_values: bf16 NaN and infinity stay non-finite",
          "[simd][decode][bf16]") {
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    const std::size_t d = 19, nk = 3;
    std::vector<xfmr::bf16> k(nk * d, xfmr::to_bf16(0.5f));
    k[1 * d + 17] = xfmr::to_bf16(std::numeric_limits<float>::quiet_NaN());
    k[2 * d + 18] = xfmr::to_bf16(-std::numeric_limits<float>::infinity());
    std::vector<float> q(2 * d, 1.0f), s(2 * nk, 0.0f);
    xfmr::simd::rows_dot_keys<Isa>(2, q.data(), d, k.data(), d, nk, d, s.data(), nk);
    std::vector<float> p(2 * nk, 0.25f), acc(2 * d, 0.0f);
    xfmr::simd::rows_accumulate_values<Isa>(2, p.data(), nk, k.data(), d, nk, d, acc.data(), d);
    for (std::size_t r = 0; r < 2; ++r) {
      INFO("isa " << Isa::name << ", row " << r);
      CHECK(s[r * nk] == Approx(9.5f));
      CHECK(std::isnan(s[r * nk + 1]));
      CHECK(s[r * nk + 2] == -std::numeric_limits<float>::infinity());
      CHECK(acc[r * d] == Approx(0.375f));
      CHECK(std::isnan(acc[r * d + 17]));
      CHECK(acc[r * d + 18] == -std::numeric_limits<float>::infinity());
    }
  });
}
