// SPDX-License-Identifier: MIT
// RoFormer → GlobalPointer / Efficient GlobalPointer → spans, against the golden logits that
// make_golden.py computes with the bert4keras formulas on HF's hidden states.
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include <catch2/catch.hpp>

#include <xfmr/models/roformer.hpp>
#include <xfmr/models/span_pipeline.hpp>

#include "support/golden.hpp"
#include "support/throws.hpp"

using namespace xfmr;
using xfmr_test::Golden;
using xfmr_test::golden_dir;

namespace {

constexpr Index kTypes = 3, kHead = 8;

GlobalPointerConfig head_config() {
  GlobalPointerConfig c;
  c.hidden_size = 64;
  c.types = kTypes;
  c.head_size = kHead;
  return c;
}

template <typename T>
GlobalPointer<T> golden_gp(const Golden& g) {
  GlobalPointer<T> gp(head_config());
  gp.set_weights(g.file.matrix<T>("gp.kernel"), g.file.vector<T>("gp.bias").transpose());
  return gp;
}
template <typename T>
EfficientGlobalPointer<T> golden_egp(const Golden& g) {
  EfficientGlobalPointer<T> egp(head_config());
  egp.set_weights(g.file.matrix<T>("egp.p_kernel"), g.file.vector<T>("egp.p_bias").transpose(),
                  g.file.matrix<T>("egp.q_kernel"), g.file.vector<T>("egp.q_bias").transpose());
  return egp;
}

// Worst relative error over the (sequence, type) blocks of the logits (max |Δ| over the finite
// reference entries / max |ref| of the block); −inf entries must be −inf in both.
template <typename T>
double worst_scores_error(const Eigen::Tensor<T, 4, Eigen::RowMajor>& got,
                          const RowMatrix<double>& ref, Index n) {
  double worst = 0;
  for (Index blk = 0; blk < ref.rows() / n; ++blk) {
    double num = 0, den = 0;
    for (Index i = 0; i < n; ++i)
      for (Index j = 0; j < n; ++j) {
        const double r = ref(blk * n + i, j);
        const double x = static_cast<double>(got.data()[(blk * n + i) * n + j]);
        if (std::isinf(r)) {
          REQUIRE(x == r);
          continue;
        }
        num = std::max(num, std::fabs(x - r));
        den = std::max(den, std::fabs(r));
        REQUIRE(!std::isnan(x));
      }
    worst = std::max(worst, den > 0 ? num / den : num);
  }
  return worst;
}

template <typename T, class Head>
void check_pipeline(const char* name, Head head, const std::string& ref_name) {
  const Golden g("roformer");
  const EncoderInput in = g.input();
  SpanPipeline<T, RoFormerModel<T>, Head> pipe(RoFormerModel<T>::load(golden_dir("roformer")),
                                               std::move(head));
  const auto& s = pipe.scores(in);
  const RowMatrix<double> ref = g.f64(ref_name);
  const double err = worst_scores_error<T>(s, ref, in.n());
  std::printf("golden %-22s %-6s rel. error vs bert4keras formula on HF f64 hidden: %.2e\n", name,
              std::is_same_v<T, float> ? "float" : "double", err);
  CHECK(err <= (std::is_same_v<T, float> ? 1e-5 : 1e-12));

  // Spans: every (b, a, i, j) with 1 <= i <= j <= L − 2 and reference logit > 0. Entries within
  // the float error of 0 may go either way in float.
  const std::vector<Span> spans = pipe.extract(in);
  std::size_t k = 0, expected = 0;
  for (Index b = 0; b < in.batch(); ++b)
    for (Index a = 0; a < kTypes; ++a)
      for (Index i = 1; i < in.length(b) - 1; ++i)
        for (Index j = i; j < in.length(b) - 1; ++j) {
          const double r = ref((b * kTypes + a) * in.n() + i, j);
          const bool in_spans = k < spans.size() && spans[k].sequence == b && spans[k].type == a &&
                                spans[k].start == i && spans[k].end == j;
          if (std::fabs(r) > 1e-4) CHECK(in_spans == (r > 0));
          if (in_spans) {
            // logits are O(10): the relative bound above times that scale
            CHECK(std::fabs(spans[k].score - r) <= (std::is_same_v<T, float> ? 2e-4 : 2e-10));
            ++k;
          }
          expected += r > 0;
        }
  CHECK(k == spans.size());  // nothing outside [1, L − 2], nothing out of order
  CHECK(expected > 3);       // the check above saw positive logits
  // Without dropping [CLS]/[SEP], the spans touching them come back too.
  CHECK(pipe.extract(in, 0.0, false).size() > spans.size());
}

}  // namespace

TEMPLATE_TEST_CASE("span pipeline: RoFormer + GlobalPointer equals the bert4keras formula on HF",
                   "[models][golden][heads]", float, double) {
  const Golden g("roformer");
  check_pipeline<TestType>("roformer+GlobalPointer", golden_gp<TestType>(g), "gp.f64.scores");
}

TEMPLATE_TEST_CASE("span pipeline: RoFormer + Efficient GlobalPointer equals the bert4keras "
                   "formula on HF",
                   "[models][golden][heads]", float, double) {
  const Golden g("roformer");
  check_pipeline<TestType>("roformer+EfficientGP", golden_egp<TestType>(g), "egp.f64.scores");
}

TEST_CASE("span pipeline: a head of another width is refused", "[models][errors]") {
  GlobalPointerConfig c = head_config();
  c.hidden_size = 32;
  using Pipe = SpanPipeline<float, RoFormerModel<float>, GlobalPointer<float>>;
  XFMR_REQUIRE_INVALID(
      Pipe(RoFormerModel<float>::load(golden_dir("roformer")), GlobalPointer<float>(c)),
      "xfmr::SpanPipeline: expected a head with the model's hidden_size=64 (got 32)");
}
