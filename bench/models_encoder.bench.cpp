// SPDX-License-Identifier: MIT
// Encoder forward, workload W8 (DESIGN.md §5): BertModel at the all-MiniLM-L6-v2 shape (hidden
// 384, 6 layers, 12 heads, FFN 1536) and the BERT-base shape (768, 12, 12, 3072), float with
// fp32 or bf16 weights ("bf16" = 1: WeightStorage::Bf16, the layers' GEMMs on bf16 weights), one
// and two threads, batch 32 × 128 tokens (every sequence full) and a sentence-length mix (below).
// Random weights (the speed does not depend on them); vocabulary 1000 instead of 30522 (the
// gather costs the same, the table is 90 MB smaller).
//
// Counters: sequences/s (items) and FLOP/s. FLOPs (EncoderModel::flops, DESIGN §5): per layer
// 2·tokens·(4H² + 2H·I) for the four GEMMs (fused QKV, output, FFN in, FFN out) plus
// 4·Σ L²·H for attention (QKᵀ and PV over each sequence's own L tokens); LayerNorm, GELU,
// softmax and RoPE are not counted. Tokens are the valid tokens only (the encoder packs them;
// padding costs nothing). Read FLOP/s against BM_ceiling_fma and BM_ceiling_gemm of the same run
// (bf16 rows: against BM_ceiling_bf16 too).
//
// Sentence-length mixes, padded to n = 128: "mix" = 1: 32 lengths from a log-normal with median
// 24 tokens and σ = 0.6 (typical of sentence-embedding inputs such as STS/NLI pairs), clipped to
// [4, 128], fixed seed; "mix" = 2: the peers' batch (bench/peers/run_peers.py): the token counts
// of the first 32 entries of 5–40 words of Debian's fortunes file, [CLS]/[SEP] included.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "common.hpp"
#include "xfmr/models/bert.hpp"

namespace {

using xfmr::Index;

template <typename T>
xfmr::RowMatrix<T> filled(Index rows, Index cols, double scale) {
  xfmr::RowMatrix<T> m(rows, cols);
  xfmr_bench::fill(m.data(), static_cast<std::size_t>(m.size()));
  m *= static_cast<T>(scale);
  return m;
}
template <typename T>
Eigen::Matrix<T, Eigen::Dynamic, 1> filled_vector(Index n, double scale, double offset = 0) {
  Eigen::Matrix<T, Eigen::Dynamic, 1> v(n);
  xfmr_bench::fill(v.data(), static_cast<std::size_t>(n));
  v = (v.array() * static_cast<T>(scale) + static_cast<T>(offset)).matrix();
  return v;
}

template <typename T>
xfmr::BertModel<T> random_bert(Index hidden, Index layers, Index heads, Index ffn,
                               xfmr::WeightStorage storage = xfmr::WeightStorage::Native) {
  xfmr::EncoderConfig c;
  c.weight_storage = storage;
  c.family = xfmr::EncoderFamily::Bert;
  c.vocab_size = 1000;
  c.hidden_size = hidden;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.intermediate_size = ffn;
  c.max_position_embeddings = 512;
  xfmr::EncoderWeights<T> w;
  const double s = 1.0 / std::sqrt(double(hidden));
  w.word_embeddings = filled<T>(c.vocab_size, hidden, 1.0);
  w.position_embeddings = filled<T>(c.max_position_embeddings, hidden, 1.0);
  w.token_type_embeddings = filled<T>(c.type_vocab_size, hidden, 1.0);
  w.embeddings_norm_weight = filled_vector<T>(hidden, 0.1, 1.0);
  w.embeddings_norm_bias = filled_vector<T>(hidden, 0.1);
  for (Index l = 0; l < layers; ++l) {
    xfmr::EncoderLayerWeights<T> x;
    x.query = x.key = x.value = x.attention_output = filled<T>(hidden, hidden, s);
    x.query_bias = x.key_bias = x.value_bias = x.attention_output_bias =
        filled_vector<T>(hidden, 0.1);
    x.attention_norm_weight = x.output_norm_weight = filled_vector<T>(hidden, 0.1, 1.0);
    x.attention_norm_bias = x.output_norm_bias = filled_vector<T>(hidden, 0.1);
    x.intermediate = filled<T>(ffn, hidden, s);
    x.intermediate_bias = filled_vector<T>(ffn, 0.1);
    x.output = filled<T>(hidden, ffn, 1.0 / std::sqrt(double(ffn)));
    x.output_bias = filled_vector<T>(hidden, 0.1);
    w.layers.push_back(x);
  }
  return xfmr::BertModel<T>(c, w);
}

constexpr Index kFortuneLengths[32] = {16, 12, 14, 20, 14, 13, 13, 11, 14, 14, 14,
                                       16, 15, 13, 12, 16, 13, 13, 20, 13, 11, 10,
                                       14, 9,  8,  12, 9,  12, 9,  22, 25, 13};

xfmr::EncoderInput w8_input(Index batch, Index n, int mix) {
  xfmr::EncoderInput in;
  in.ids.resize(batch, n);
  in.lengths.resize(batch);
  std::mt19937_64 rng(8);
  std::lognormal_distribution<double> len(std::log(24.0), 0.6);
  for (Index b = 0; b < batch; ++b) {
    in.lengths[b] = mix == 0   ? n
                    : mix == 1 ? std::clamp<Index>(Index(std::lround(len(rng))), 4, n)
                               : std::min(kFortuneLengths[b % 32], n);
    for (Index t = 0; t < n; ++t) in.ids(b, t) = Index((b * 131 + t * 7) % 1000);
  }
  return in;
}

// Args: hidden, layers, heads, ffn, batch, n, mix, threads, bf16.
void BM_model_encoder(benchmark::State& state) {
  using T = float;
  auto model = random_bert<T>(state.range(0), state.range(1), state.range(2), state.range(3),
                              state.range(8) ? xfmr::WeightStorage::Bf16
                                             : xfmr::WeightStorage::Native);
  model.encoder().set_threads(int(state.range(7)));
  const xfmr::EncoderInput in = w8_input(state.range(4), state.range(5), int(state.range(6)));
  xfmr::RowMatrix<T> hidden(in.batch() * in.n(), model.hidden_size());
  model.forward(in, hidden);  // grows the scratch
  for (auto _ : state) {
    model.forward(in, hidden);
    benchmark::DoNotOptimize(hidden.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * in.batch());  // sequences/s
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(model.flops(in));
  double tokens = 0;
  for (Index b = 0; b < in.batch(); ++b) tokens += double(in.length(b));
  state.counters["tokens"] = tokens;
}

}  // namespace

// all-MiniLM-L6-v2 and BERT-base; 32 × 128 (mix 0) and the sentence-length mixes (1, 2);
// 1 and 2 threads (Encoder::set_threads: every layer split on the default ThreadPool: row
// blocks and (sequence, head) items); one sequence of 128 tokens (batch 1), which two threads
// split as well as a batch; fp32 and bf16 weights.
BENCHMARK(BM_model_encoder)
    ->ArgNames({"hidden", "layers", "heads", "ffn", "batch", "n", "mix", "threads", "bf16"})
    ->ArgsProduct({{384}, {6}, {12}, {1536}, {32}, {128}, {0, 1, 2}, {1, 2}, {0, 1}})
    ->ArgsProduct({{384}, {6}, {12}, {1536}, {1}, {128}, {0}, {1, 2}, {0, 1}})
    ->ArgsProduct({{768}, {12}, {12}, {3072}, {32}, {128}, {0, 1}, {1, 2}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
