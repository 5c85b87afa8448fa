// SPDX-License-Identifier: MIT
// BertModel / RoFormerModel against the naive long-double encoder (tests/reference/encoder.hpp)
// on random weights and shapes the golden models do not cover (pre-LN, half-split RoPE, every
// activation, empty sequences), padding invariance, and input errors.
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <xfmr/models/bert.hpp>
#include <xfmr/models/pooling.hpp>
#include <xfmr/models/roformer.hpp>
#include <xfmr/thread_pool.hpp>

#include "reference/encoder.hpp"
#include "support/golden.hpp"
#include "support/random.hpp"
#include "support/throws.hpp"

using namespace xfmr;
using xfmr_test::sequence_rel_error;

namespace {

template <typename T>
using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;

template <typename T>
Vec<T> random_vec(std::mt19937_64& rng, Index n, double lo, double hi) {
  return xfmr_test::random_matrix<T>(rng, n, 1, lo, hi);
}

// Random weights for config c: matrices U(±0.35), biases U(±0.2), gains 1 + U(±0.2).
template <typename T>
EncoderWeights<T> random_weights(std::mt19937_64& rng, const EncoderConfig& c) {
  const Index V = c.vocab_size, E = c.embedding_dim(), H = c.hidden_size, I = c.intermediate_size;
  const auto mat = [&](Index r, Index k) {
    return xfmr_test::random_matrix<T>(rng, r, k, -0.35, 0.35);
  };
  const auto bias = [&](Index n) { return random_vec<T>(rng, n, -0.2, 0.2); };
  const auto gain = [&](Index n) { return Vec<T>(random_vec<T>(rng, n, 0.8, 1.2)); };
  EncoderWeights<T> w;
  w.word_embeddings = xfmr_test::random_matrix<T>(rng, V, E, -1, 1);
  if (c.family == EncoderFamily::Bert)
    w.position_embeddings = xfmr_test::random_matrix<T>(rng, c.max_position_embeddings, E, -1, 1);
  w.token_type_embeddings = xfmr_test::random_matrix<T>(rng, c.type_vocab_size, E, -1, 1);
  w.embeddings_norm_weight = gain(E);
  w.embeddings_norm_bias = bias(E);
  if (c.family == EncoderFamily::RoFormer && E != H) {
    w.embeddings_project = mat(H, E);
    w.embeddings_project_bias = bias(H);
  }
  for (Index l = 0; l < c.num_hidden_layers; ++l) {
    EncoderLayerWeights<T> x;
    x.query = mat(H, H);
    x.query_bias = bias(H);
    x.key = mat(H, H);
    x.key_bias = bias(H);
    x.value = mat(H, H);
    x.value_bias = bias(H);
    x.attention_output = mat(H, H);
    x.attention_output_bias = bias(H);
    x.attention_norm_weight = gain(H);
    x.attention_norm_bias = bias(H);
    x.intermediate = mat(I, H);
    x.intermediate_bias = bias(I);
    x.output = mat(H, I);
    x.output_bias = bias(H);
    x.output_norm_weight = gain(H);
    x.output_norm_bias = bias(H);
    w.layers.push_back(x);
  }
  if (c.pre_layer_norm) {
    w.final_norm_weight = gain(H);
    w.final_norm_bias = bias(H);
  }
  return w;
}

EncoderConfig small_config(EncoderFamily family) {
  EncoderConfig c;
  c.family = family;
  c.vocab_size = 37;
  c.hidden_size = 24;
  c.num_attention_heads = 3;  // d = 8
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.max_position_embeddings = 20;
  c.type_vocab_size = 3;
  c.layer_norm_eps = 1e-12;
  return c;
}

// A padded batch with the given lengths at width n: random ids, types and (optionally) segments;
// padding filled with junk (out-of-range ids) that must never be read.
EncoderInput random_input(std::mt19937_64& rng, const EncoderConfig& c, std::vector<Index> lengths,
                          Index n, bool segments) {
  EncoderInput in;
  const Index batch = static_cast<Index>(lengths.size());
  in.ids = IdMatrix::Constant(batch, n, -12345);
  in.token_type_ids = IdMatrix::Constant(batch, n, 99);
  in.lengths = Eigen::Map<const LengthVector>(lengths.data(), batch);
  if (segments) in.segment_ids = IdMatrix::Constant(batch, n, 7);
  std::uniform_int_distribution<std::int64_t> id(0, c.vocab_size - 1), ty(0, c.type_vocab_size - 1);
  for (Index b = 0; b < batch; ++b) {
    const Index split = lengths[std::size_t(b)] == 0
                            ? 0
                            : Index(rng() % std::uint64_t(lengths[std::size_t(b)] + 1));
    for (Index t = 0; t < lengths[std::size_t(b)]; ++t) {
      in.ids(b, t) = id(rng);
      in.token_type_ids(b, t) = ty(rng);
      if (segments) in.segment_ids(b, t) = t >= split ? 1 : 0;
    }
  }
  return in;
}

template <typename T>
RowMatrix<T> run_model(const EncoderConfig& c, const EncoderWeights<T>& w, const EncoderInput& in) {
  if (c.family == EncoderFamily::Bert) return BertModel<T>(c, w).forward(in);
  return RoFormerModel<T>(c, w).forward(in);
}

template <typename T>
double worst_against_reference(const EncoderConfig& c, const EncoderWeights<T>& w,
                               const EncoderInput& in, const RowMatrix<T>& hidden) {
  double worst = 0;
  for (Index b = 0; b < in.batch(); ++b) {
    const Index len = in.length(b);
    for (Index t = len; t < in.n(); ++t) REQUIRE(hidden.row(b * in.n() + t).isZero(0));
    if (len == 0) continue;
    std::vector<std::int64_t> ids, types;
    std::vector<int> seg;
    for (Index t = 0; t < len; ++t) {
      ids.push_back(in.ids(b, t));
      types.push_back(in.token_type_ids(b, t));
      if (in.segment_ids.size() > 0) seg.push_back(int(in.segment_ids(b, t)));
    }
    const xfmr_ref::MatL ref = xfmr_ref::encoder(c, w, ids, types, seg);
    const auto got = hidden.middleRows(b * in.n(), len);
    worst = std::max(worst, sequence_rel_error(got, ref, 0, len));
  }
  return worst;
}

struct Variant {
  const char* name;
  EncoderFamily family;
  bool pre_ln;
  ActivationKind act;
  RopeLayout layout;
  bool rotary_value;
  Index embedding_size;
  bool unilm;
};

}  // namespace

TEMPLATE_TEST_CASE("encoder: models equal the long-double reference (post/pre-LN, RoPE layouts, "
                   "activations, UniLM, empty sequences)",
                   "[models][encoder]", float, double) {
  using T = TestType;
  const Variant variants[] = {
      {"bert post-LN gelu", EncoderFamily::Bert, false, ActivationKind::GeluErf,
       RopeLayout::Interleaved, false, 0, false},
      {"bert pre-LN relu", EncoderFamily::Bert, true, ActivationKind::Relu, RopeLayout::Interleaved,
       false, 0, false},
      {"bert unilm silu", EncoderFamily::Bert, false, ActivationKind::Silu, RopeLayout::Interleaved,
       false, 0, true},
      {"roformer interleaved gelu_tanh", EncoderFamily::RoFormer, false, ActivationKind::GeluTanh,
       RopeLayout::Interleaved, false, 0, false},
      {"roformer half-split rotary_value", EncoderFamily::RoFormer, false, ActivationKind::GeluErf,
       RopeLayout::HalfSplit, true, 0, false},
      {"roformer pre-LN E=16 identity", EncoderFamily::RoFormer, true, ActivationKind::Identity,
       RopeLayout::Interleaved, false, 16, false},
      {"roformer E=30 unilm", EncoderFamily::RoFormer, false, ActivationKind::GeluErf,
       RopeLayout::Interleaved, true, 30, true},
  };
  auto rng = xfmr_test::make_rng(11);
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
  for (const Variant& v : variants) {
    EncoderConfig c = small_config(v.family);
    c.pre_layer_norm = v.pre_ln;
    c.hidden_act = v.act;
    c.rope_layout = v.layout;
    c.rotary_value = v.rotary_value;
    c.embedding_size = v.embedding_size;
    const EncoderWeights<T> w = random_weights<T>(rng, c);
    // Lengths around the attention and GEMM tiles are not the point here (tests/attention and
    // tests/layers sweep those); odd lengths, a length 1, an empty and a full sequence are.
    const EncoderInput in = random_input(rng, c, {5, 1, 13, 0, 20, 7}, 20, v.unilm);
    const RowMatrix<T> hidden = run_model<T>(c, w, in);
    const double err = worst_against_reference(c, w, in, hidden);
    std::printf("encoder vs long double, %-34s %-6s rel. error %.2e\n", v.name,
                std::is_same_v<T, float> ? "float" : "double", err);
    CHECK(err <= tol);
  }
}

TEMPLATE_TEST_CASE("encoder: padding never changes valid rows; a sequence alone equals the same "
                   "sequence in any batch, bit for bit",
                   "[models][encoder]", float, double) {
  using T = TestType;
  auto rng = xfmr_test::make_rng(12);
  for (const EncoderFamily family : {EncoderFamily::Bert, EncoderFamily::RoFormer}) {
    const EncoderConfig c = small_config(family);
    const EncoderWeights<T> w = random_weights<T>(rng, c);
    const std::vector<Index> lengths{9, 3, 17, 1};
    const EncoderInput batch = random_input(rng, c, lengths, 18, false);
    const RowMatrix<T> hidden = run_model<T>(c, w, batch);
    for (Index b = 0; b < batch.batch(); ++b) {
      const Index len = lengths[std::size_t(b)];
      EncoderInput alone;  // unpadded, no lengths
      alone.ids = batch.ids.row(b).head(len);
      alone.token_type_ids = batch.token_type_ids.row(b).head(len);
      const RowMatrix<T> one = run_model<T>(c, w, alone);
      CHECK(one == hidden.middleRows(b * batch.n(), len));
      // Wider padding, other padding junk: the same rows again.
      EncoderInput wide = random_input(rng, c, {len}, 19, false);
      wide.ids.row(0).head(len) = alone.ids.row(0);
      wide.token_type_ids.row(0).head(len) = alone.token_type_ids.row(0);
      const RowMatrix<T> w1 = run_model<T>(c, w, wide);
      CHECK(w1.topRows(len) == one);
      CHECK(w1.bottomRows(19 - len).isZero(0));
    }
  }
}

TEST_CASE("encoder: one model object serves batches of changing shapes (scratch reuse)",
          "[models][encoder]") {
  auto rng = xfmr_test::make_rng(13);
  const EncoderConfig c = small_config(EncoderFamily::RoFormer);
  const EncoderWeights<double> w = random_weights<double>(rng, c);
  RoFormerModel<double> model(c, w);
  for (const auto& shape : std::vector<std::pair<std::vector<Index>, Index>>{
           {{12, 4}, 12}, {{2}, 3}, {{15, 15, 15}, 15}, {{0, 0}, 4}, {{6, 1, 9}, 10}}) {
    const EncoderInput in =
        random_input(rng, c, shape.first, shape.second, shape.first.size() == 3);
    const RowMatrix<double> again = model.forward(in);
    CHECK(again == RoFormerModel<double>(c, w).forward(in));
    CHECK(worst_against_reference(c, w, in, again) <= 1e-12);
  }
  // An empty batch.
  EncoderInput none;
  CHECK(model.forward(none).size() == 0);
}

TEST_CASE("encoder: input errors name the sequence, position, expected and got",
          "[models][errors]") {
  auto rng = xfmr_test::make_rng(14);
  const EncoderConfig c = small_config(EncoderFamily::Bert);
  BertModel<float> model(c, random_weights<float>(rng, c));
  const EncoderInput good = random_input(rng, c, {4, 2}, 5, false);
  RowMatrix<float> hidden(10, 24);
  REQUIRE_NOTHROW(model.forward(good, hidden));

  EncoderInput in = good;
  in.ids(1, 1) = 37;
  XFMR_REQUIRE_INVALID(
      model.forward(in, hidden),
      "xfmr::BertModel: expected ids in [0, vocab_size=37) (got 37 at sequence 1, position 1)");
  in = good;
  in.ids(0, 3) = -1;
  XFMR_REQUIRE_INVALID(model.forward(in, hidden), "(got -1 at sequence 0, position 3)");
  in = good;
  in.ids(1, 2) = 1000;  // padding: never read
  REQUIRE_NOTHROW(model.forward(in, hidden));
  in = good;
  in.token_type_ids(0, 0) = 3;
  XFMR_REQUIRE_INVALID(
      model.forward(in, hidden),
      "expected token_type_ids in [0, type_vocab_size=3) (got 3 at sequence 0, position 0)");
  in = good;
  in.lengths[1] = 6;
  XFMR_REQUIRE_INVALID(model.forward(in, hidden),
                       "expected lengths in [0, n=5] (got 6 for sequence 1)");
  in.lengths[1] = -1;
  XFMR_REQUIRE_INVALID(model.forward(in, hidden),
                       "expected lengths in [0, n=5] (got -1 for sequence 1)");
  in = good;
  in.lengths.resize(3);
  XFMR_REQUIRE_INVALID(model.forward(in, hidden),
                       "expected lengths empty or one per sequence (2) (got 3)");
  in = good;
  in.token_type_ids.resize(2, 4);
  XFMR_REQUIRE_INVALID(model.forward(in, hidden),
                       "expected token_type_ids empty or 2x5 like ids (got 2x4)");
  in = good;
  in.segment_ids = IdMatrix::Zero(2, 5);
  in.segment_ids(1, 0) = 2;
  XFMR_REQUIRE_INVALID(model.forward(in, hidden),
                       "expected segment_ids 0 or 1 (got 2 at sequence 1, position 0)");
  RowMatrix<float> wrong(10, 23);
  XFMR_REQUIRE_INVALID(model.forward(good, wrong),
                       "expected hidden of 10x24 (batch*n x hidden_size) (got 10x23)");

  // Longer than the position table (BERT): 21 tokens, 20 positions. RoFormer accepts it.
  const EncoderInput long_in = random_input(rng, c, {21}, 21, false);
  XFMR_REQUIRE_INVALID(
      model.forward(long_in),
      "expected sequences of at most max_position_embeddings=20 tokens (the position "
      "table) (got 21 for sequence 0)");
  const EncoderConfig rc = small_config(EncoderFamily::RoFormer);
  const EncoderWeights<double> rw = random_weights<double>(rng, rc);
  const EncoderInput rlong = random_input(rng, rc, {33, 21}, 33, false);
  CHECK(worst_against_reference(rc, rw, rlong, RoFormerModel<double>(rc, rw).forward(rlong)) <=
        1e-12);

  // Weights that do not fit the config; a family mismatch.
  EncoderWeights<float> bad = random_weights<float>(rng, c);
  bad.layers[1].intermediate_bias.resize(39);
  XFMR_REQUIRE_INVALID(BertModel<float>(c, bad),
                       "xfmr::EncoderLayer: expected intermediate_bias of 40 values (got 39)");
  bad = random_weights<float>(rng, c);
  bad.layers.pop_back();
  XFMR_REQUIRE_INVALID(BertModel<float>(c, bad),
                       "xfmr::Encoder: expected num_hidden_layers=2 layer weight sets (got 1)");
  bad = random_weights<float>(rng, c);
  bad.word_embeddings.resize(36, 24);
  XFMR_REQUIRE_INVALID(BertModel<float>(c, bad),
                       "xfmr::BertModel: expected word_embeddings of 37x24 (got 36x24)");
  XFMR_REQUIRE_INVALID(
      RoFormerModel<float>(c, random_weights<float>(rng, c)),
      "xfmr::RoFormerModel: expected a config with model_type \"roformer\" (got \"bert\")");
}

TEMPLATE_TEST_CASE("encoder: any thread count gives the same bits", "[models][encoder][threads]",
                   float, double) {
  // Row blocks and (sequence, head) items over 2, 3, 4 and 9 parts on the default pool and on
  // pools of 1, 2 and 3 threads; BERT post-LN with UniLM segments, RoFormer pre-LN with
  // rotary_value (RoPE per head inside the attention step); a batch with empty sequences and
  // one sequence alone (split across the threads too).
  using T = TestType;
  auto rng = xfmr_test::make_rng(15);
  xfmr::ThreadPool pool1(1), pool2(2), pool3(3);
  for (const EncoderFamily family : {EncoderFamily::Bert, EncoderFamily::RoFormer}) {
    EncoderConfig c = small_config(family);
    c.pre_layer_norm = family == EncoderFamily::RoFormer;
    c.rotary_value = family == EncoderFamily::RoFormer;
    const EncoderWeights<T> w = random_weights<T>(rng, c);
    for (const bool single : {false, true}) {
      const EncoderInput in =
          single ? random_input(rng, c, {19}, 19, family == EncoderFamily::Bert)
                 : random_input(rng, c, {7, 0, 19, 3, 3, 11, 1}, 19, family == EncoderFamily::Bert);
      const RowMatrix<T> one = run_model<T>(c, w, in);
      for (const int threads : {2, 3, 4, 9})
        for (xfmr::ThreadPool* pool : {static_cast<xfmr::ThreadPool*>(nullptr), &pool1, &pool2,
                                       &pool3}) {
          INFO("family " << int(family) << " single " << single << " threads " << threads
                         << " pool " << (pool ? pool->threads() : 0));
          RowMatrix<T> many;
          if (family == EncoderFamily::Bert) {
            BertModel<T> m(c, w);
            m.encoder().set_threads(threads, pool);
            CHECK(m.encoder().threads() == threads);
            CHECK(m.encoder().pool() == pool);
            many = m.forward(in);
            REQUIRE(many == one);
            many = m.forward(in);  // warm scratch, same answer
          } else {
            RoFormerModel<T> m(c, w);
            m.encoder().set_threads(threads, pool);
            many = m.forward(in);
          }
          REQUIRE(many == one);
        }
    }
  }
  const EncoderConfig c = small_config(EncoderFamily::Bert);
  BertModel<float> m(c, random_weights<float>(rng, c));
  XFMR_REQUIRE_INVALID(m.encoder().set_threads(0), "xfmr::Encoder: expected threads >= 1 (got 0)");
}
