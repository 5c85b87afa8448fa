// SPDX-License-Identifier: MIT
// Performer / FAVOR+ (DESIGN.md §5, workload W5): n = 4096, d = 64, m = 256 orthogonal positive
// features, one head, float, single thread. FLOPs as SPEC §12 / issue 3: 8·n·m·d per call
// (projections of Q and K, φ(K)ᵀV and φ(Q)·S; the exps, maxima and the normaliser are not
// counted). Causal is counted with the same 8·n·m·d (linear attention has no masked half to
// skip; the chunk-local quadratic part is extra work, not counted). Read against BM_ceiling_fma
// in the same run. BM_scaling_performer/<n> (n = 256 … 65536) feeds bench/plot_scaling.py.
#include <cstdint>

#include <benchmark/benchmark.h>

#include "common.hpp"
#include "xfmr/attention/performer.hpp"
#include "xfmr/attention/recurrent_state.hpp"

namespace {

using xfmr::Index;

struct PerformerInputs {
  xfmr::RowMatrix<float> q, k, v, out;
  PerformerInputs(Index n, Index d) : q(n, d), k(n, d), v(n, d), out(n, d) {
    xfmr_bench::fill(q.data(), static_cast<std::size_t>(q.size()));
    xfmr_bench::fill(k.data(), static_cast<std::size_t>(k.size()));
    xfmr_bench::fill(v.data(), static_cast<std::size_t>(v.size()));
    out.setZero();
    k = k.reverse().eval();  // not identical to q
  }
};

xfmr::PerformerConfig w5_config(Index d, Index m) {
  xfmr::PerformerConfig c;
  c.head_dim = d;
  c.num_features = m;
  c.features = xfmr::PerformerFeatures::Positive;
  c.projection = xfmr::ProjectionKind::Orthogonal;
  c.seed = 1;
  return c;
}

double performer_flops(Index n, Index m, Index d) {
  return 8.0 * static_cast<double>(n) * static_cast<double>(m) * static_cast<double>(d);
}

void run(benchmark::State& state, Index n, Index d, Index m, bool causal) {
  PerformerInputs x(n, d);
  xfmr::Performer<float> p(w5_config(d, m));
  const auto mask = xfmr::AttentionMask<float>{}.set_causal(causal);
  p.forward(x.q, x.k, x.v, x.out, mask);  // sizes the scratch
  for (auto _ : state) {
    p.forward(x.q, x.k, x.v, x.out, mask);
    benchmark::DoNotOptimize(x.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(performer_flops(n, m, d));
}

void BM_performer_attend(benchmark::State& state) {
  run(state, state.range(0), state.range(1), state.range(2), state.range(3) != 0);
}
BENCHMARK(BM_performer_attend)
    ->Args({4096, 64, 256, 0})
    ->Args({4096, 64, 256, 1})
    ->ArgNames({"n", "d", "m", "causal"})
    ->Unit(benchmark::kMillisecond);

// One token of recurrent decoding against the state (m = 256, d = 64, one head).
void BM_performer_decode(benchmark::State& state) {
  const Index d = state.range(0), m = state.range(1);
  xfmr::Performer<float> p(w5_config(d, m));
  xfmr::RecurrentAttentionState<float> s(p, 1, d);
  PerformerInputs x(64, d);
  Index t = 0;
  for (auto _ : state) {
    s.step(x.q.row(t), x.k.row(t), x.v.row(t), x.out.row(t));
    t = (t + 1) & 63;
    benchmark::DoNotOptimize(x.out.data());
    benchmark::ClobberMemory();
  }
  state.counters["FLOP/s"] = xfmr_bench::flop_rate(performer_flops(1, m, d));
}
BENCHMARK(BM_performer_decode)->Args({64, 256})->ArgNames({"d", "m"})->Unit(benchmark::kMicrosecond);

// ---- plot only (CI skips BM_scaling_*): non-causal, one head, d = 64, m = 256 ------------------
void BM_scaling_performer(benchmark::State& state) {
  run(state, state.range(0), 64, 256, false);
}
BENCHMARK(BM_scaling_performer)->RangeMultiplier(2)->Range(256, 65536)->Unit(benchmark::kMicrosecond);

}  // namespace
