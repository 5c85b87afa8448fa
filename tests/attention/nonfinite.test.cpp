// SPDX-License-Identifier: MIT
// Non-finite input is never silent (issue 9, item 5): for every attention flavour a NaN in one
// q row, a NaN in one k row, an inf in v and a NaN/+inf bias make exactly the affected output
// rows non-finite, leave every other row bit-identical to the clean run, and fully masked rows
// stay exact zeros.
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/attention/keynorm.hpp>
#include <xfmr/attention/recurrent_state.hpp>
#include <xfmr/attention/linear.hpp>
#include <xfmr/attention/mask.hpp>
#include <xfmr/attention/performer.hpp>
#include <xfmr/attention/rerope.hpp>
#include <xfmr/attention/softmax.hpp>
#include <xfmr/attention/taylor.hpp>

#include "support/random.hpp"

using xfmr::Index;
using xfmr::RowMatrix;

namespace {

enum class Row { Same, NaN, NonFinite, Zero, Finite, SameOrNonFinite };

/// Inputs of one run; `run` fills out (n_q × d_v) from them.
template <typename T>
struct Inputs {
  RowMatrix<T> q, k, v, bias;
};
template <typename T>
using Runner = std::function<void(const Inputs<T>&, RowMatrix<T>&)>;

/// Checks `got` row by row against the clean output and the expected kind of each row:
///   Same: bit-identical to the clean row; NaN: every entry NaN; NonFinite: no entry finite;
///   Zero: every entry exactly +0 or −0 (== 0); Finite: every entry finite; SameOrNonFinite: each
///   entry bit-identical or non-finite (never a wrong finite value).
template <typename T>
void check_rows(const RowMatrix<T>& clean, const RowMatrix<T>& got, const std::vector<Row>& want,
                const std::string& what) {
  INFO(what);
  REQUIRE(got.rows() == Index(want.size()));
  for (Index i = 0; i < got.rows(); ++i) {
    INFO("row " << i);
    bool ok = true;
    for (Index c = 0; c < got.cols(); ++c) {
      const T x = got(i, c);
      switch (want[std::size_t(i)]) {
        case Row::Same: ok &= x == clean(i, c) && std::isfinite(x); break;
        case Row::NaN: ok &= std::isnan(x); break;
        case Row::NonFinite: ok &= !std::isfinite(x); break;
        case Row::Zero: ok &= x == T(0); break;
        case Row::Finite: ok &= std::isfinite(x); break;
        case Row::SameOrNonFinite: ok &= x == clean(i, c) || !std::isfinite(x); break;
      }
    }
    CHECK(ok);
  }
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

/// The standard battery. `sees(i, j)`: query row i gives key j a weight; `masked(i)`: query i
/// has no allowed key (expected exact zeros whatever the inputs). Bias cases run when `bias`
/// is true (the runner reads in.bias).
template <typename T>
void battery(const std::string& name, const Inputs<T>& clean_in, const Runner<T>& run,
             const std::function<bool(Index, Index)>& sees, const std::function<bool(Index)>& masked,
             bool bias = false) {
  const Index nq = clean_in.q.rows(), nk = clean_in.k.rows();
  RowMatrix<T> clean(nq, clean_in.v.cols());
  run(clean_in, clean);
  auto expect = [&](auto affected, Row bad) {
    std::vector<Row> want(std::size_t(nq), Row::Same);
    for (Index i = 0; i < nq; ++i)
      if (masked(i))
        want[std::size_t(i)] = Row::Zero;
      else if (affected(i))
        want[std::size_t(i)] = bad;
    return want;
  };
  for (Index i = 0; i < nq; ++i)
    if (masked(i)) CHECK(clean.row(i).isZero(0));
  RowMatrix<T> out(nq, clean.cols());
  const Index qi = nq / 2, kj = nk / 3;
  {  // NaN in one q row (and in a fully masked row, which must stay zero)
    Inputs<T> in = clean_in;
    in.q(qi, 1) = T(kNaN);
    for (Index i = 0; i < nq; ++i)
      if (masked(i)) in.q.row(i).setConstant(T(kNaN));
    run(in, out);
    check_rows(clean, out, expect([&](Index i) { return i == qi; }, Row::NaN), name + ": NaN in q");
  }
  {  // +inf in one q row
    Inputs<T> in = clean_in;
    in.q(qi, 0) = T(kInf);
    run(in, out);
    check_rows(clean, out, expect([&](Index i) { return i == qi; }, Row::NaN),
               name + ": +inf in q");
  }
  {  // NaN in one k row: every query that sees the key
    Inputs<T> in = clean_in;
    in.k(kj, 0) = T(kNaN);
    run(in, out);
    check_rows(clean, out, expect([&](Index i) { return sees(i, kj); }, Row::NaN),
               name + ": NaN in k");
  }
  {  // +inf in a whole v row: every query that gives it a weight. Rows that give it weight 0
     // but share its tile in a P·V product may turn non-finite (0·inf, documented), never wrong.
    Inputs<T> in = clean_in;
    in.v.row(kj).setConstant(T(kInf));
    run(in, out);
    auto want = expect([&](Index i) { return sees(i, kj); }, Row::NonFinite);
    for (auto& w : want)
      if (w == Row::Same) w = Row::SameOrNonFinite;
    check_rows(clean, out, want, name + ": inf in v");
  }
  if (!bias) return;
  const Index bj = std::min(kj, Index(1));
  for (double b : {kNaN, kInf}) {
    Inputs<T> in = clean_in;
    in.bias(qi, bj) = T(b);
    run(in, out);
    check_rows(clean, out, expect([&](Index i) { return i == qi && sees(i, bj); }, Row::NaN),
               name + (std::isnan(b) ? ": NaN in bias" : ": +inf in bias"));
  }
  {  // −inf is a mask: finite, and the other rows untouched
    Inputs<T> in = clean_in;
    in.bias(qi, bj) = T(-kInf);
    run(in, out);
    check_rows(clean, out, expect([&](Index i) { return i == qi; }, Row::Finite),
               name + ": -inf in bias");
  }
}

template <typename T>
Inputs<T> make_inputs(Index nq, Index nk, Index d, Index dv, std::uint64_t salt) {
  auto rng = xfmr_test::make_rng(salt);
  Inputs<T> in;
  in.q = xfmr_test::random_matrix<T>(rng, nq, d, -1, 1);
  in.k = xfmr_test::random_matrix<T>(rng, nk, d, -1, 1);
  in.v = xfmr_test::random_matrix<T>(rng, nk, dv, -1, 1);
  in.bias = xfmr_test::random_matrix<T>(rng, nq, nk, -0.5, 0.5);
  return in;
}

}  // namespace

TEMPLATE_TEST_CASE("Softmax attention: non-finite input propagates, masked rows stay zero",
                   "[attention][softmax][nonfinite]", float, double) {
  using T = TestType;
  const Index n = 21, d = 8, masked_row = 5;
  // Query tile 16 sends rows 0..15 down the kernel path (Kernel) and rows 16..20 down the row
  // path; key tiles of 4 spread the keys over several online-softmax steps.
  for (auto product : {xfmr::TileProduct::Kernel, xfmr::TileProduct::Eigen}) {
    for (Index query_tile : {Index(16), Index(3)}) {
      xfmr::SoftmaxAttentionConfig cfg;
      cfg.head_dim = d;
      cfg.query_tile = query_tile;
      cfg.key_tile = 4;
      cfg.tile_product = product;
      xfmr::SoftmaxAttention<T> attn(cfg);
      using BoolMatrix = typename xfmr::AttentionMask<T>::BoolMatrix;
      BoolMatrix allowed = BoolMatrix::Constant(n, n, true);
      allowed.row(masked_row).setConstant(false);
      const std::string name = std::string("softmax ") +
                               (product == xfmr::TileProduct::Kernel ? "kernel" : "eigen") +
                               " query_tile=" + std::to_string(query_tile);
      Runner<T> run = [&](const Inputs<T>& in, RowMatrix<T>& out) {
        xfmr::AttentionMask<T> mask;
        mask.set_causal().set_allowed(allowed).set_bias(in.bias);
        attn.forward(in.q, in.k, in.v, out, mask);
      };
      battery<T>(name, make_inputs<T>(n, n, d, d, 1), run,
                 [&](Index i, Index j) { return j <= i && i != masked_row; },
                 [&](Index i) { return i == masked_row; }, true);
      // Fully masked by the key limit instead of the element mask: more queries than keys,
      // the first rows come before every key (causal, bottom-right).
      Runner<T> run2 = [&](const Inputs<T>& in, RowMatrix<T>& out) {
        xfmr::AttentionMask<T> mask;
        mask.set_causal();
        attn.forward(in.q, in.k, in.v, out, mask);
      };
      battery<T>(name + " nq>nk", make_inputs<T>(n, n - 4, d, d, 2), run2,
                 [&](Index i, Index j) { return j <= i - 4; }, [&](Index i) { return i < 4; });
      // Decoding: one query against the cache (the row path), and a masked decode query.
      Runner<T> dec = [&](const Inputs<T>& in, RowMatrix<T>& out) {
        attn.forward(in.q, in.k, in.v, out, xfmr::AttentionMask<T>{}.set_causal());
      };
      battery<T>(name + " decode", make_inputs<T>(1, n, d, d, 3), dec,
                 [](Index, Index) { return true; }, [](Index) { return false; });
      Runner<T> dec_masked = [&](const Inputs<T>& in, RowMatrix<T>& out) {
        attn.forward(in.q, in.k, in.v, out, xfmr::AttentionMask<T>{}.set_key_length(0));
      };
      battery<T>(name + " decode masked", make_inputs<T>(1, n, d, d, 4), dec_masked,
                 [](Index, Index) { return false; }, [](Index) { return true; });
    }
  }
}

TEMPLATE_TEST_CASE("KeyNorm, QueryNorm, cosine and QK-RMS attention: non-finite input propagates",
                   "[attention][keynorm][nonfinite]", float, double) {
  using T = TestType;
  const Index n = 13, d = 8;
  for (auto kind : {xfmr::QkNormKind::Key, xfmr::QkNormKind::Query, xfmr::QkNormKind::Cosine,
                    xfmr::QkNormKind::QkRms}) {
    xfmr::QkNormConfig nc;
    nc.kind = kind;
    nc.head_dim = d;
    xfmr::QkNorm<T> norm(nc);
    xfmr::SoftmaxAttentionConfig cfg;
    cfg.head_dim = d;
    cfg.scale = norm.attention_scale();
    cfg.key_tile = 4;
    xfmr::SoftmaxAttention<T> attn(cfg);
    Runner<T> run = [&](const Inputs<T>& in, RowMatrix<T>& out) {
      RowMatrix<T> q = in.q, k = in.k;
      norm.forward(q, k);
      attn.forward(q, k, in.v, out, xfmr::AttentionMask<T>{}.set_causal());
    };
    battery<T>("qknorm " + std::to_string(int(kind)), make_inputs<T>(n, n, d, d, 5), run,
               [](Index i, Index j) { return j <= i; }, [](Index) { return false; });
  }
}

TEMPLATE_TEST_CASE("ReRoPE attention: non-finite input propagates (prefill and decode)",
                   "[attention][rerope][nonfinite]", float, double) {
  using T = TestType;
  const Index n = 19, d = 8;
  for (double leaky : {0.0, 4.0}) {
    xfmr::ReRopeConfig c;
    c.head_dim = d;
    c.window = 5;
    c.leaky_factor = leaky;
    xfmr::ReRopeAttention<T> attn(c);
    Runner<T> pre = [&](const Inputs<T>& in, RowMatrix<T>& out) {
      attn.forward(in.q, in.k, in.v, out);
    };
    battery<T>("rerope prefill leaky=" + std::to_string(leaky), make_inputs<T>(n, n, d, d, 6),
               pre, [](Index i, Index j) { return j <= i; }, [](Index) { return false; });
    Runner<T> dec = [&](const Inputs<T>& in, RowMatrix<T>& out) {
      attn.forward(in.q, in.k, in.v, out);
    };
    battery<T>("rerope decode leaky=" + std::to_string(leaky), make_inputs<T>(1, n, d, d, 7),
               dec, [](Index, Index) { return true; }, [](Index) { return false; });
    // The first key of the second 64-key tile: query 64 sees it alone in that tile (every
    // other score there is −inf), so a NaN score must not be lost by the tile's maximum.
    const Index m = 64 + 19;
    const Inputs<T> in = make_inputs<T>(m, m, d, d, 14);
    RowMatrix<T> clean(m, d), out(m, d);
    attn.forward(in.q, in.k, in.v, clean);
    Inputs<T> bad = in;
    bad.k(64, 2) = T(kNaN);
    attn.forward(bad.q, bad.k, bad.v, out);
    std::vector<Row> want(std::size_t(m), Row::Same);
    for (Index i = 64; i < m; ++i) want[std::size_t(i)] = Row::NaN;
    check_rows(clean, out, want, "rerope prefill NaN in k at a tile start");
  }
}

TEMPLATE_TEST_CASE("Linear attention: non-finite input propagates (parallel, chunked, scan, "
                   "recurrent, Taylor)",
                   "[attention][linear][nonfinite]", float, double) {
  using T = TestType;
  const Index n = 23, d = 6;
  for (auto map : {xfmr::FeatureMap::EluPlusOne, xfmr::FeatureMap::Relu, xfmr::FeatureMap::Exp,
                   xfmr::FeatureMap::EfficientAttention, xfmr::FeatureMap::Taylor2}) {
    const std::string mname = xfmr::feature_map_name(map);
    xfmr::LinearAttentionConfig<T> c;
    c.head_dim = d;
    c.feature_map = map;
    if (map == xfmr::FeatureMap::Taylor2) c = xfmr::taylor_linear_attention_config<T>(d);
    {  // parallel, with a padded key whose k row holds NaN (its features are zeroed; its v
       // row must stay finite: it meets a zero weight, and 0·NaN = NaN, documented)
      xfmr::LinearAttention<T> attn(c);
      Eigen::Matrix<bool, Eigen::Dynamic, 1> valid = Eigen::Matrix<bool, Eigen::Dynamic, 1>::Constant(n, true);
      valid[n - 1] = false;
      xfmr::AttentionMask<T> pad;
      pad.set_key_valid(valid);
      Runner<T> run = [&](const Inputs<T>& in, RowMatrix<T>& out) {
        Inputs<T> x = in;
        x.k.row(n - 1).setConstant(T(kNaN));
        attn.forward(x.q, x.k, x.v, out, pad);
      };
      battery<T>("linear parallel " + mname, make_inputs<T>(n, n, d, d, 8), run,
                 [](Index, Index) { return true; }, [](Index) { return false; });
      // No valid key (eps = 0): every row is masked, zeros whatever q and k hold.
      c.eps = 0;
      xfmr::LinearAttention<T> attn0(c);
      xfmr::AttentionMask<T> none;
      none.set_key_valid(Eigen::Matrix<bool, Eigen::Dynamic, 1>::Constant(n, false));
      Runner<T> run0 = [&](const Inputs<T>& in, RowMatrix<T>& out) {
        attn0.forward(in.q, in.k, in.v, out, none);
      };
      if (map != xfmr::FeatureMap::EfficientAttention)  // no normaliser: φ(q)·0 = 0 already
        battery<T>("linear parallel masked " + mname, make_inputs<T>(n, n, d, d, 9), run0,
                   [](Index, Index) { return false; }, [](Index) { return true; });
    }
    if (map == xfmr::FeatureMap::EfficientAttention) c.feature_map = xfmr::FeatureMap::Exp;
    const auto causal = xfmr::AttentionMask<T>{}.set_causal();
    c.chunk_size = 4;
    for (auto kernel : {xfmr::CausalKernel::Scan, xfmr::CausalKernel::Quadratic}) {
      c.causal_kernel = kernel;
      xfmr::LinearAttention<T> attn(c);
      Runner<T> run = [&](const Inputs<T>& in, RowMatrix<T>& out) {
        attn.forward(in.q, in.k, in.v, out, causal);
      };
      battery<T>("linear causal " + mname + (kernel == xfmr::CausalKernel::Scan ? " scan" : " quadratic"),
                 make_inputs<T>(n, n, d, d, 10), run, [](Index i, Index j) { return j <= i; },
                 [](Index) { return false; });
    }
    {  // recurrent state, one token per step
      Runner<T> run = [&](const Inputs<T>& in, RowMatrix<T>& out) {
        xfmr::RecurrentAttentionState<T> st(c, 1);
        for (Index t = 0; t < n; ++t) {
          RowMatrix<T> o(1, d);
          st.step(in.q.row(t), in.k.row(t), in.v.row(t), o);
          out.row(t) = o;
        }
      };
      battery<T>("linear recurrent " + mname, make_inputs<T>(n, n, d, d, 11), run,
                 [](Index i, Index j) { return j <= i; }, [](Index) { return false; });
    }
  }
}

TEMPLATE_TEST_CASE("Performer: non-finite input propagates (full, causal, recurrent)",
                   "[attention][performer][nonfinite]", float, double) {
  using T = TestType;
  const Index n = 21, d = 8;
  for (auto kind : {xfmr::PerformerFeatures::Positive, xfmr::PerformerFeatures::Hyperbolic,
                    xfmr::PerformerFeatures::Trigonometric}) {
    for (bool causal : {false, true}) {
      xfmr::PerformerConfig c;
      c.head_dim = d;
      c.num_features = 16;
      c.features = kind;
      xfmr::Performer<T> p(c);
      const auto mask = xfmr::AttentionMask<T>{}.set_causal(causal);
      Runner<T> run = [&](const Inputs<T>& in, RowMatrix<T>& out) {
        p.forward(in.q, in.k, in.v, out, mask);
      };
      const std::string name = "performer " + std::to_string(int(kind)) + (causal ? " causal" : " full");
      battery<T>(name, make_inputs<T>(n, n, d, d, 12), run,
                 [&](Index i, Index j) { return !causal || j <= i; }, [](Index) { return false; });
      if (!causal) continue;
      Runner<T> rec = [&](const Inputs<T>& in, RowMatrix<T>& out) {
        xfmr::RecurrentAttentionState<T> st(p, 1, d);
        for (Index t = 0; t < n; ++t) {
          RowMatrix<T> o(1, d);
          st.step(in.q.row(t), in.k.row(t), in.v.row(t), o);
          out.row(t) = o;
        }
      };
      battery<T>(name + " recurrent", make_inputs<T>(n, n, d, d, 13), rec,
                 [](Index i, Index j) { return j <= i; }, [](Index) { return false; });
    }
  }
}
