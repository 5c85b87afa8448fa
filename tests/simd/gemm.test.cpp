// SPDX-License-Identifier: MIT
// The GEMM engine (simd/gemm.hpp) against a naive long-double GEMM (reference/gemm.hpp) on every
// ISA compiled and supported, float and double: M, N, K around the register tile and the cache
// blocks (0, 1, mr±1, nr±1, kc±1, mc±1), A row-major and transposed (read in place or packed by
// pack_a), B (k×n) and (n×k), packed in the call and prepacked, every epilogue and two chains, α scaling, α = 0, β = 0 with NaN in C,
// β = 1 and β ≠ 1, the lower-triangle restriction, leading dimensions wider than the matrices,
// pointers one element off alignment, and canaries around C that must stay untouched.
//
// Tolerance per entry: (k + 2 + e)·u_T·scale, scale = |α|·Σ_p|a·b| + |β·c| plus the magnitudes
// the epilogue adds (u_T = 2^-24 or 2^-53, e = the epilogue's roundings): the classical bound for
// any summation order. A wrong index, a missed or doubled k step or a lost term gives errors of
// order scale, far above it.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/simd/gemm.hpp>

#include "reference/gemm.hpp"
#include "support/isa_list.hpp"
#include "support/random.hpp"

using xfmr::Index;
namespace simd = xfmr::simd;

namespace {

template <typename T>
constexpr T kCanary = T(-7777.5);

/// rows × ld values one element past the vector's start (misaligned), random in [-1, 1]; the
/// padding, the element before and 9 after hold canaries.
template <typename T>
struct Buf {
  std::vector<T> store;
  T* p;
  Buf(std::mt19937_64& rng, Index rows, Index cols, Index ld)
      : store(static_cast<std::size_t>(std::max<Index>(rows * ld, 0) + 10)) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (auto& v : store) v = kCanary<T>;
    p = store.data() + 1;
    for (Index i = 0; i < rows; ++i)
      for (Index j = 0; j < cols; ++j) p[i * ld + j] = static_cast<T>(u(rng));
  }
};

enum class Epi {
  None, Bias, RowScale, OldColScale, Relu, Residual, BiasRelu, RescaleResidual, BiasTilePass
};
constexpr Epi kAllEpi[] = {Epi::None,     Epi::Bias,     Epi::RowScale,       Epi::OldColScale,
                           Epi::Relu,     Epi::Residual, Epi::BiasRelu,       Epi::RescaleResidual,
                           Epi::BiasTilePass};
constexpr int kEpiCount = static_cast<int>(std::size(kAllEpi));

/// An epilogue with a tile pass (gemm_epilogue.hpp): the bias on the register tile, then every
/// finished tile scaled by −2 in place (exact). Wrong results if the pass runs before the tile's
/// store, runs twice, or misses a tile (a row tail, a column tail, a part's partial tile).
template <typename T>
struct BiasThenTileTimesMinus2 {
  const T* bias;
  template <class V>
  typename V::type apply(typename V::type v, Index, Index j, const T*, std::size_t n) const noexcept {
    return V::add(v, simd::gemm_load<V>(bias + j, n));
  }
  void tile(T* c, Index ldc, Index rows, Index ncols) const noexcept {
    for (Index r = 0; r < rows; ++r)
      for (Index j = 0; j < ncols; ++j) c[r * ldc + j] *= T(-2);
  }
};
static_assert(simd::has_tile_pass_v<BiasThenTileTimesMinus2<float>, float> &&
              !simd::has_tile_pass_v<simd::BiasColumns<float>, float>);
const char* name(Epi e) {
  switch (e) {
    case Epi::None: return "none";
    case Epi::Bias: return "bias";
    case Epi::RowScale: return "row scale";
    case Epi::OldColScale: return "old-C column scale";
    case Epi::Relu: return "relu";
    case Epi::Residual: return "residual";
    case Epi::BiasRelu: return "bias+relu";
    case Epi::RescaleResidual: return "rescale+residual";
    case Epi::BiasTilePass: return "bias, then a tile pass (times -2)";
  }
  return "?";
}
bool reads_old_c(Epi e) { return e == Epi::OldColScale || e == Epi::RescaleResidual; }

struct Case {
  Index m, n, k;
  bool trans_a, trans_b, packed;
  Epi epi;
  double alpha, beta;
  Index pad;
  simd::GemmPart part = simd::GemmPart::Full;
  bool packed_a = false;
};

template <class Isa, typename T, class E>
void call(const Case& cs, simd::GemmA<T> a, simd::GemmB<T> b, T* c, Index ldc, const E& e) {
  const T alpha = static_cast<T>(cs.alpha), beta = static_cast<T>(cs.beta);
  if (cs.packed_a) {  // A packed by pack_a (misaligned), B packed in the call
    std::vector<T> pa(static_cast<std::size_t>(simd::packed_a_size<T, Isa>(cs.m, cs.k)) + 1);
    simd::pack_a<Isa>(cs.m, cs.k, a.data, a.row_stride, a.col_stride, pa.data() + 1);
    simd::gemm<Isa>(cs.m, cs.n, cs.k, alpha, simd::PackedA<T>{pa.data() + 1, cs.k, cs.m}, b, beta,
                    c, ldc, e, cs.part);
    return;
  }
  if (cs.packed) {
    std::vector<T> packed(static_cast<std::size_t>(simd::packed_b_size<T, Isa>(cs.k, cs.n)) + 1);
    T* pk = packed.data() + 1;  // misaligned as well
    simd::pack_b<Isa>(cs.k, cs.n, b, pk);
    simd::gemm<Isa>(cs.m, cs.n, cs.k, alpha, a, simd::PackedB<T>{pk, cs.k, cs.n}, beta, c, ldc, e,
                    cs.part);
  } else {
    simd::gemm<Isa>(cs.m, cs.n, cs.k, alpha, a, b, beta, c, ldc, e, cs.part);
  }
}

template <typename T, class Isa>
void check_case(std::mt19937_64& rng, const Case& cs) {
  const Index m = cs.m, n = cs.n, k = cs.k, pad = cs.pad;
  const Index lda = (cs.trans_a ? m : k) + pad, ldb = (cs.trans_b ? k : n) + pad, ldc = std::max<Index>(n + pad, 1);
  Buf<T> a(rng, cs.trans_a ? k : m, cs.trans_a ? m : k, lda);
  Buf<T> b(rng, cs.trans_b ? n : k, cs.trans_b ? k : n, ldb);
  Buf<T> c(rng, m, n, ldc), r(rng, m, n, ldc);
  Buf<T> bias(rng, 1, n, n), rows(rng, 1, m, m), cols(rng, 1, n, n);
  const bool nan_c = cs.beta == 0.0 && !reads_old_c(cs.epi);
  if (nan_c)
    for (Index i = 0; i < m; ++i)
      for (Index j = 0; j < n; ++j) c.p[i * ldc + j] = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> c0 = c.store;
  const Index rsa = cs.trans_a ? 1 : lda, csa = cs.trans_a ? lda : 1;
  std::vector<long double> ref, scale;
  xfmr_ref::gemm(m, n, k, cs.alpha, a.p, rsa, csa, cs.trans_b, b.p, ldb, cs.beta, c.p, ldc, ref,
                 scale);
  int rounds = 0;
  for (Index i = 0; i < m; ++i)
    for (Index j = 0; j < n; ++j) {
      long double& v = ref[static_cast<std::size_t>(i * n + j)];
      long double& s = scale[static_cast<std::size_t>(i * n + j)];
      const long double old = c0[static_cast<std::size_t>(1 + i * ldc + j)];
      const long double bj = bias.p[j], ri = rows.p[i], cj = cols.p[j], res = r.p[i * ldc + j];
      switch (cs.epi) {
        case Epi::None: break;
        case Epi::Bias: v += bj, s += std::fabs(bj), rounds = 1; break;
        case Epi::RowScale: v *= ri, s *= std::fabs(ri), rounds = 1; break;
        case Epi::OldColScale: v += cj * old, s += std::fabs(cj * old), rounds = 1; break;
        case Epi::Relu: v = std::max(v, 0.0L); break;
        case Epi::Residual: v += res, s += std::fabs(res), rounds = 1; break;
        case Epi::BiasRelu: v = std::max(v + bj, 0.0L), s += std::fabs(bj), rounds = 1; break;
        case Epi::RescaleResidual:
          v += cj * old + res, s += std::fabs(cj * old) + std::fabs(res), rounds = 2;
          break;
        case Epi::BiasTilePass: v = -2 * (v + bj), s = 2 * (s + std::fabs(bj)), rounds = 1; break;
      }
    }
  T* cp = c.p;
  const simd::GemmA<T> ga{a.p, rsa, csa};
  const simd::GemmB<T> gb{b.p, ldb, cs.trans_b};
  switch (cs.epi) {
    case Epi::None: call<Isa>(cs, ga, gb, cp, ldc, simd::NoEpilogue{}); break;
    case Epi::Bias: call<Isa>(cs, ga, gb, cp, ldc, simd::BiasColumns<T>{bias.p}); break;
    case Epi::RowScale: call<Isa>(cs, ga, gb, cp, ldc, simd::ScaleRows<T>{rows.p}); break;
    case Epi::OldColScale: call<Isa>(cs, ga, gb, cp, ldc, simd::ScaleOldColumns<T>{cols.p}); break;
    case Epi::Relu: call<Isa>(cs, ga, gb, cp, ldc, simd::activation(simd::Relu{})); break;
    case Epi::Residual: call<Isa>(cs, ga, gb, cp, ldc, simd::AddResidual<T>{r.p, ldc}); break;
    case Epi::BiasRelu:
      call<Isa>(cs, ga, gb, cp, ldc,
                simd::chain(simd::BiasColumns<T>{bias.p}, simd::activation(simd::Relu{})));
      break;
    case Epi::RescaleResidual:
      call<Isa>(cs, ga, gb, cp, ldc,
                simd::chain(simd::ScaleOldColumns<T>{cols.p}, simd::AddResidual<T>{r.p, ldc}));
      break;
    case Epi::BiasTilePass: call<Isa>(cs, ga, gb, cp, ldc, BiasThenTileTimesMinus2<T>{bias.p}); break;
  }
  const bool lower = cs.part == simd::GemmPart::Lower, upper = cs.part == simd::GemmPart::Upper;
  const long double u = std::numeric_limits<T>::epsilon() / 2;
  INFO(Isa::name << " m=" << m << " n=" << n << " k=" << k << (cs.trans_a ? " At" : " A")
                 << (cs.trans_b ? " Bt" : " B") << (cs.packed ? " prepacked" : "")
                 << (cs.packed_a ? " packed-A" : "")
                 << (lower ? " lower" : "") << (upper ? " upper" : "") << " epilogue=" << name(cs.epi)
                 << " alpha=" << cs.alpha << " beta=" << cs.beta << " pad=" << pad);
  long bad = 0, canary_hit = 0;
  long double worst = 0;
  for (Index i = 0; i < m; ++i)
    for (Index j = upper ? std::min(i, n) : 0; j < n && (!lower || j <= i); ++j) {
      const auto idx = static_cast<std::size_t>(i * n + j);
      const long double err = std::fabs(static_cast<long double>(c.p[i * ldc + j]) - ref[idx]);
      const long double tol = static_cast<long double>(k + 2 + rounds) * u * scale[idx];
      if (!(err <= tol)) {
        ++bad;
        worst = std::max(worst, err);
      }
    }
  // Outside C(m×n): padding columns, the element before, the tail after. With Lower, entries of
  // register tiles wholly above the diagonal must be untouched too (mc is a multiple of mr, so
  // tile rows start at multiples of mr, so tile (i, j) is skipped iff j/nr·nr >= (i/mr + 1)·mr).
  constexpr Index mr = simd::GemmShape<T, Isa>::mr, nr = simd::GemmShape<T, Isa>::nr;
  for (std::size_t t = 0; t < c.store.size(); ++t) {
    const auto off = static_cast<Index>(t) - 1;
    const Index i = off / ldc, j = off % ldc;
    const bool inside = off >= 0 && i < m && j < n;
    const bool skipped_tile =
        inside && ((lower && j / nr * nr >= (i / mr + 1) * mr) ||
                   (upper && i >= std::min(n, j / nr * nr + nr)));
    if ((!inside || skipped_tile) && !(c.store[t] == c0[t] || (c.store[t] != c.store[t] &&
                                                              c0[t] != c0[t])))
      ++canary_hit;
  }
  INFO("worst error " << static_cast<double>(worst));
  CHECK(bad == 0);
  CHECK(canary_hit == 0);
}

/// Sizes around the register tile and the blocks, every layout, modes rotated over the sizes.
template <typename T>
void sweep_tile_edges() {
  auto rng = xfmr_test::make_rng(sizeof(T));
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using S = simd::GemmShape<T, Isa>;
    const Index mr = S::mr, nr = S::nr;
    int rot = 0;
    for (const Index m : {Index(0), Index(1), mr - 1, mr, mr + 1, 2 * mr + 1, Index(33)})
      for (const Index n : {Index(0), Index(1), nr - 1, nr, nr + 1, 2 * nr + 3})
        for (const Index k : {Index(0), Index(1), Index(3), Index(8), Index(64), Index(127)})
          for (int layout = 0; layout < 8; ++layout) {
            ++rot;
            Case cs{m, n, k, (layout & 1) != 0, (layout & 2) != 0, (layout & 4) != 0,
                    kAllEpi[rot % kEpiCount], 1.0, 0.0, rot % 3 == 0 ? 0 : 3};
            const int mode = (rot / 8) % 4;
            cs.alpha = mode == 2 ? -0.625 : 1.0;
            cs.beta = mode == 1 ? 1.0 : mode == 2 ? 0.75 : 0.0;
            check_case<T, Isa>(rng, cs);
            if (layout == 0 || layout == 1) {  // A packed by pack_a, from both storages
              cs.packed_a = true;
              check_case<T, Isa>(rng, cs);
            }
          }
  });
}

/// K across kc blocks (partial sums between blocks) and M across row blocks (row_block(k)).
template <typename T>
void sweep_blocks() {
  auto rng = xfmr_test::make_rng(100 + sizeof(T));
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using S = simd::GemmShape<T, Isa>;
    int rot = 0;
    // k_one: the largest k run as one pass; above it, passes of kc.
    for (const Index k : {S::kc - 1, S::kc, S::kc + 1, S::k_one, S::k_one + 1, 2 * S::kc + 5})
      for (int layout = 0; layout < 8; ++layout)
        for (const double beta : {0.0, 1.0, 0.5}) {
          ++rot;
          Case cs{13, 2 * S::nr + 3, k, (layout & 1) != 0, (layout & 2) != 0,
                  (layout & 4) != 0, kAllEpi[rot % kEpiCount], 1.5, beta, 2};
          check_case<T, Isa>(rng, cs);
          cs.packed_a = layout < 2;
          if (cs.packed_a) check_case<T, Isa>(rng, cs);
        }
    // The row block is S::row_block(k): mc_max for a short k (one kc block); for kmid a value
    // between mc and mc_max (mc + mr rows), with several kc blocks for float on the vector ISAs
    // (partial sums of every row of the block; not for double on AVX2, where kmid = 321 <= k_one,
    // nor on the scalar tier, whose kc = 2048 for float is larger than kmid).
    const Index kmid = S::block_bytes / (static_cast<Index>(sizeof(T)) * (S::mc + S::mr));
    REQUIRE(S::row_block(37) == S::mc_max);
    REQUIRE(S::row_block(kmid) > S::mc);
    REQUIRE(S::row_block(kmid) < S::mc_max);
    REQUIRE(S::row_block(Index(1) << 20) == S::mc);
    for (const Index k : {Index(37), kmid}) {
      const Index mb = S::row_block(k);
      for (const Index m : {mb - 1, mb, mb + 1, 2 * mb + 7})
        for (int layout = 0; layout < 8; layout += k == 37 ? 1 : 2) {
          ++rot;
          Case cs{m, 21, k, (layout & 1) != 0, (layout & 2) != 0, (layout & 4) != 0,
                  kAllEpi[rot % kEpiCount], 1.0, m % 2 ? 0.0 : 1.0, 1};
          check_case<T, Isa>(rng, cs);
          cs.packed_a = layout < 2;
          if (cs.packed_a) check_case<T, Isa>(rng, cs);
        }
    }
  });
}

/// Every epilogue with every layout, with one and several kc blocks.
template <typename T>
void every_epilogue() {
  auto rng = xfmr_test::make_rng(200 + sizeof(T));
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using S = simd::GemmShape<T, Isa>;
    for (const Epi e : kAllEpi)
      for (int layout = 0; layout < 8; ++layout)
        for (const Index k : {Index(19), S::k_one + 3})
          for (const double beta : {0.0, 0.5}) {
            const Case cs{S::mr + 1, S::nr + 5, k, (layout & 1) != 0, (layout & 2) != 0,
                          (layout & 4) != 0, e, 0.75, beta, 1};
            check_case<T, Isa>(rng, cs);
          }
  });
}

/// GemmPart::Lower and Upper on square, tall and wide shapes: the triangle is right and the
/// tiles (rows) the part skips are untouched.
template <typename T>
void lower_part() {
  auto rng = xfmr_test::make_rng(300 + sizeof(T));
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    using S = simd::GemmShape<T, Isa>;
    for (const Index m : {Index(1), S::mr + 1, S::nr + 1, Index(40), S::mc + 5})
      for (int layout = 0; layout < 8; ++layout) {
        Case cs{m, std::min<Index>(m, 37), 29, (layout & 1) != 0, (layout & 2) != 0,
                (layout & 4) != 0, layout % 2 ? Epi::None : Epi::Bias, 1.0,
                layout % 3 == 0 ? 1.0 : 0.0, 2};
        for (const auto part : {simd::GemmPart::Lower, simd::GemmPart::Upper}) {
          cs.part = part;
          cs.n = std::min<Index>(m, 37);
          check_case<T, Isa>(rng, cs);
          cs.n = m;
          check_case<T, Isa>(rng, cs);
          cs.n = m + 2 * S::nr + 1;  // wide: panels wholly right of the last row
          check_case<T, Isa>(rng, cs);
          cs.packed_a = layout < 2;  // the Gram's form: A = Yᵀ packed
          if (cs.packed_a) check_case<T, Isa>(rng, cs);
          cs.packed_a = false;
        }
      }
  });
}

}  // namespace

TEST_CASE("gemm: sizes around the register tile, every layout, alpha/beta", "[gemm][simd]") {
  sweep_tile_edges<float>();
  sweep_tile_edges<double>();
}

TEST_CASE("gemm: k across kc blocks and m across mc blocks", "[gemm][simd]") {
  sweep_blocks<float>();
  sweep_blocks<double>();
}

TEST_CASE("gemm: every epilogue with every layout", "[gemm][simd]") {
  every_epilogue<float>();
  every_epilogue<double>();
}

TEST_CASE("gemm: lower and upper triangle parts", "[gemm][simd]") {
  lower_part<float>();
  lower_part<double>();
}

TEST_CASE("gemm: degenerate sizes and alpha = 0", "[gemm][simd]") {
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // k = 0: C = β·C; β = 0 overwrites NaN with 0; A and B are never read (null here).
    std::vector<float> c = {1, 2, 3, 99, 4, 5, 6, 99};
    simd::gemm_nt<Isa, float>(2, 3, 0, 1.0f, static_cast<const float*>(nullptr), 0, nullptr, 0, 2.0f,
                       c.data(), 4);
    CHECK(c == std::vector<float>{2, 4, 6, 99, 8, 10, 12, 99});
    c = {nan, nan, nan, 99, nan, nan, nan, 99};
    simd::gemm_nn<Isa, float>(2, 3, 0, 1.0f, static_cast<const float*>(nullptr), 0, nullptr, 0, 0.0f,
                       c.data(), 4);
    CHECK(c == std::vector<float>{0, 0, 0, 99, 0, 0, 0, 99});
    // k = 0 with a bias: C = bias.
    const float bias[3] = {7, 8, 9};
    simd::gemm<Isa>(2, 3, 0, 1.0f, simd::GemmA<float>{nullptr, 0, 0},
                    simd::GemmB<float>{nullptr, 0, false}, 0.0f, c.data(), 4,
                    simd::BiasColumns<float>{bias});
    CHECK(c == std::vector<float>{7, 8, 9, 99, 7, 8, 9, 99});
    // α = 0: A and B not read even when they hold NaN.
    std::vector<float> a(6, nan);
    c = {1, 2, 3, 99, 4, 5, 6, 99};
    simd::gemm_nt<Isa, float>(2, 3, 2, 0.0f, a.data(), 2, a.data(), 2, 1.0f, c.data(), 4);
    CHECK(c == std::vector<float>{1, 2, 3, 99, 4, 5, 6, 99});
    // m = 0 or n = 0: nothing touched.
    simd::gemm_nn<Isa, float>(0, 3, 2, 1.0f, a.data(), 2, a.data(), 3, 0.0f, c.data(), 4);
    simd::gemm_nt<Isa, float>(2, 0, 2, 1.0f, a.data(), 2, a.data(), 2, 0.0f, c.data(), 4);
    CHECK(c == std::vector<float>{1, 2, 3, 99, 4, 5, 6, 99});
  });
}

TEST_CASE("gemm: hand-checked 2x2 examples", "[gemm][simd]") {
  xfmr_test::for_each_isa([&](auto isa) {
    using Isa = decltype(isa);
    const double a[] = {1, 2, 3, 4};  // A = [[1,2],[3,4]]
    const double b[] = {5, 6, 7, 8};  // B = [[5,6],[7,8]]
    double c[4] = {1, 1, 1, 1};
    simd::gemm_nt<Isa>(2, 2, 2, 1.0, a, 2, b, 2, 1.0, c, 2);  // A·Bᵀ + 1
    CHECK(c[0] == 18);
    CHECK(c[1] == 24);
    CHECK(c[2] == 40);
    CHECK(c[3] == 54);
    simd::gemm_nn<Isa>(2, 2, 2, 2.0, a, 2, b, 2, 0.0, c, 2);  // 2·A·B
    CHECK(c[0] == 38);
    CHECK(c[1] == 44);
    CHECK(c[2] == 86);
    CHECK(c[3] == 100);
    // Online-softmax rescale: C = Aᵀ·B + C·diag(0.5, 2) = [[26,30],[38,44]] + [[19,88],[43,200]].
    const double s[] = {0.5, 2};
    simd::gemm<Isa>(2, 2, 2, 1.0, simd::GemmA<double>{a, 1, 2}, simd::GemmB<double>{b, 2, false},
                    0.0, c, 2, simd::ScaleOldColumns<double>{s});
    CHECK(c[0] == 26 + 19);
    CHECK(c[1] == 30 + 88);
    CHECK(c[2] == 38 + 43);
    CHECK(c[3] == 44 + 200);
  });
}
