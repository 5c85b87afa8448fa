// SPDX-License-Identifier: MIT
// BertModel / RoFormerModel against HF transformers (tests/golden, make_golden.py): last hidden
// state, pooled vectors, UniLM masks, in float and double.
//
// Relative error, per sequence: max |xfmr − ref| over the sequence's valid rows (all columns),
// divided by max |ref| over the same rows. Bounds: 1e-5 in float, 1e-12 in double (issue 10).
// Float is checked against both HF runs (f32 and f64); double against the f64 run.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include <xfmr/models/bert.hpp>
#include <xfmr/models/pooling.hpp>
#include <xfmr/models/roformer.hpp>

#include "support/golden.hpp"

using namespace xfmr;
using xfmr_test::Golden;
using xfmr_test::golden_dir;
using xfmr_test::sequence_rel_error;

namespace {

template <typename T>
RowMatrix<T> run_golden_model(const std::string& model, const EncoderInput& in,
                              WeightStorage storage = WeightStorage::Native) {
  const std::string dir = golden_dir(model);
  const EncoderConfig config = EncoderConfig::load(dir + "/config.json");
  WeightLoadOptions options;
  options.weight_storage = storage;
  if (config.family == EncoderFamily::Bert) return BertModel<T>::load(dir, options).forward(in);
  return RoFormerModel<T>::load(dir, options).forward(in);
}

// "1.23e-07" for float runs (checked against HF's float run too), "-" for double.
template <typename T>
std::string vs_f32(double e) {
  if (!std::is_same_v<T, float>) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", e);
  return buf;
}

template <typename T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-12;
}
template <typename T>
constexpr const char* type_name() {
  return std::is_same_v<T, float> ? "float" : "double";
}

// Worst relative error of `got` against `ref` over the sequences (rows b·n … b·n + L_b − 1).
template <class A, class B>
double worst_hidden_error(const A& got, const B& ref, const EncoderInput& in) {
  double worst = 0;
  for (Index b = 0; b < in.batch(); ++b)
    worst = std::max(worst, sequence_rel_error(got, ref, b * in.n(), in.length(b)));
  return worst;
}
// Rows b of (batch × H) pooled vectors, one sequence each.
template <class A, class B>
double worst_row_error(const A& got, const B& ref) {
  double worst = 0;
  for (Index b = 0; b < ref.rows(); ++b)
    worst = std::max(worst, sequence_rel_error(got, ref, b, 1));
  return worst;
}

template <typename T>
void check_golden(const std::string& model) {
  const Golden g(model);
  const EncoderInput in = g.input();
  const RowMatrix<T> hidden = run_golden_model<T>(model, in);
  const double tol = tolerance<T>();

  // Padded rows are exact zeros.
  for (Index b = 0; b < in.batch(); ++b)
    for (Index t = in.length(b); t < in.n(); ++t) REQUIRE(hidden.row(b * in.n() + t).isZero(0));

  const RowMatrix<double> ref64 = g.f64("f64.hidden");
  const double e64 = worst_hidden_error(hidden, ref64, in);
  double e32 = 0;
  if (std::is_same_v<T, float>) e32 = worst_hidden_error(hidden, g.f32<double>("f32.hidden"), in);

  RowMatrix<T> mean(in.batch(), hidden.cols()), cls(in.batch(), hidden.cols());
  mean_pool<T>(hidden, in.n(), in.lengths, mean);
  cls_pool<T>(hidden, in.n(), cls);
  const double em = worst_row_error(mean, g.f64("f64.mean"));
  const double ec = worst_row_error(cls, g.f64("f64.cls"));
  l2_normalize<T>(mean);
  const double el = worst_row_error(mean, g.f64("f64.mean_l2"));

  std::printf("golden %-16s %-6s rel. error vs HF f64: hidden %.2e, mean %.2e, mean_l2 %.2e, "
              "cls %.2e; hidden vs HF f32: %s\n",
              model.c_str(), type_name<T>(), e64, em, el, ec,
              vs_f32<T>(e32).c_str());
  CHECK(e64 <= tol);
  CHECK(e32 <= tol);
  CHECK(em <= tol);
  CHECK(el <= tol);
  CHECK(ec <= tol);
}

template <typename T>
void check_unilm() {
  const Golden g("roformer");
  EncoderInput in = g.input();
  in.segment_ids = g.segment_ids();
  const RowMatrix<T> hidden = run_golden_model<T>("roformer", in);
  const double e64 = worst_hidden_error(hidden, g.f64("unilm.f64.hidden"), in);
  double e32 = 0;
  if (std::is_same_v<T, float>)
    e32 = worst_hidden_error(hidden, g.f32<double>("unilm.f32.hidden"), in);
  std::printf("golden %-16s %-6s rel. error vs HF f64: hidden %.2e; vs HF f32: %s\n",
              "roformer+unilm", type_name<T>(), e64,
              vs_f32<T>(e32).c_str());
  CHECK(e64 <= tolerance<T>());
  CHECK(e32 <= tolerance<T>());
  // The mask matters: without the segments the output is far from the UniLM reference.
  in.segment_ids.resize(0, 0);
  const RowMatrix<T> plain = run_golden_model<T>("roformer", in);
  CHECK(worst_hidden_error(plain, g.f64("unilm.f64.hidden"), in) > 1e-2);
}

}  // namespace

TEMPLATE_TEST_CASE("golden: BERT, erf GELU, eps 1e-12, names without prefix", "[models][golden]",
                   float, double) {
  check_golden<TestType>("bert_gelu");
}

TEMPLATE_TEST_CASE("golden: BERT, gelu_new (tanh), eps 1e-7, bert. prefix + pooler + position_ids",
                   "[models][golden]", float, double) {
  check_golden<TestType>("bert_gelu_new");
}

TEMPLATE_TEST_CASE("golden: RoFormer, rotary_value false, roformer. prefix", "[models][golden]",
                   float, double) {
  check_golden<TestType>("roformer");
}

TEMPLATE_TEST_CASE("golden: RoFormer, rotary_value true, embedding_size 48 != hidden 64",
                   "[models][golden]", float, double) {
  check_golden<TestType>("roformer_rv_emb");
}

TEMPLATE_TEST_CASE("golden: RoFormer with UniLM segment masks (RoFormer-Sim)", "[models][golden]",
                   float, double) {
  check_unilm<TestType>();
}

// bf16 weights (WeightStorage::Bf16) against HF's f64 run. Bound, from u_b = 2^-8: each GEMM
// entry is within (2u_b + u_b²)·Σ|a·b| of exact (simd/gemm_bf16.hpp; 2u_b: weights and, on the
// vdpbf16ps path, activations rounded), i.e. within 2u_b·κ relative with κ = Σ|a·b| / |Σ a·b|;
// the errors of the 4 GEMMs of each layer add up along the 2 layers' residual stream (LayerNorm
// rescales the stream): 8 GEMMs · 2u_b · κ, with an allowance κ = 4 for the conditioning
// (an allowance, not a proof: κ is not bounded a priori): 8 · 2^-7 · 4 = 0.25 relative to
// max |ref|. Measured 5.8e-3 – 8.2e-3 (printed). The second check shows bf16 storage is in
// effect (error > 1e-5, the float bound), so this test cannot pass on the fp32 path.
TEST_CASE("golden: float models with bf16 weights, within the bound derived from 2^-8",
          "[models][golden][bf16]") {
  for (const char* model : {"bert_gelu", "bert_gelu_new", "roformer", "roformer_rv_emb"}) {
    const Golden g(model);
    const EncoderInput in = g.input();
    const RowMatrix<float> hidden = run_golden_model<float>(model, in, WeightStorage::Bf16);
    const double e64 = worst_hidden_error(hidden, g.f64("f64.hidden"), in);
    std::printf("golden %-16s bf16   rel. error vs HF f64: hidden %.2e (bound 8 * 2^-7 * 4 = "
                "0.25)\n",
                model, e64);
    INFO(model);
    CHECK(e64 <= 8 * std::ldexp(1.0, -7) * 4);
    CHECK(e64 > tolerance<float>());
  }
}
