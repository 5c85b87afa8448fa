// SPDX-License-Identifier: MIT
// Ring attention timing (issue 13): time, bytes communicated (counted by RingAttention), and the
// efficiency against single-process SoftmaxAttention measured in the same run, for causal and
// non-causal attention; plus the ring's link bandwidth, for the scaling model.
//
//   mpiexec -n 1 ./bench_ring_attention [n=16384] [heads=2] [kv_heads=2] [d=64] [reps=2]
//   mpiexec -n 2 ./bench_ring_attention ...
//
// FLOPs (DESIGN §5): 4·n²·d·H non-causal, 2·n²·d·H causal. Time = the slowest rank's, best of
// `reps`. Baseline = SoftmaxAttention over the whole sequence in one process, run by every rank
// at the same time (so it meets the same contention for cores and memory as the ring; an idle
// MPI rank would spin in a barrier and slow it down), the slowest rank's time:
// efficiency = T_single / (P · T_ring).
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include <xfmr/attention/softmax.hpp>
#include <xfmr/distributed/mpi.hpp>
#include <xfmr/distributed/ring_attention.hpp>

namespace {

xfmr::RowMatrix<float> random(std::mt19937_64& rng, xfmr::Index rows, xfmr::Index cols) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  xfmr::RowMatrix<float> m(rows, cols);
  for (xfmr::Index i = 0; i < m.size(); ++i) m.data()[i] = u(rng);
  return m;
}

double max_over_ranks(double x, MPI_Comm comm) {
  MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_MAX, comm);
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const MPI_Comm comm = MPI_COMM_WORLD;
  const int rank = xfmr::mpi::rank(comm), p = xfmr::mpi::size(comm);
  auto arg = [&](int i, long fallback) { return argc > i ? std::atol(argv[i]) : fallback; };
  const xfmr::Index n = arg(1, 16384), heads = arg(2, 2), kv_heads = arg(3, 2), d = arg(4, 64);
  const int reps = static_cast<int>(arg(5, 2));
  const xfmr::mpi::Range mine = xfmr::mpi::shard_range(n, rank, p);

  std::mt19937_64 rng(1234 + static_cast<unsigned>(rank));
  const xfmr::RowMatrix<float> q = random(rng, mine.size(), heads * d),
                               k = random(rng, mine.size(), kv_heads * d),
                               v = random(rng, mine.size(), kv_heads * d);
  xfmr::RowMatrix<float> out(mine.size(), heads * d);
  xfmr::SoftmaxAttentionConfig config;
  config.head_dim = d;
  xfmr::mpi::RingAttention<float> contiguous(comm, config),
      zigzag(comm, config, xfmr::mpi::RingLayout::ZigZag);

  // Link bandwidth: one block (n/P tokens of K and V) sent around the ring, best of 5.
  double link = 0;
  const std::int64_t block_bytes =
      std::int64_t(mine.size()) * kv_heads * 2 * d * std::int64_t(sizeof(float));
  if (p > 1) {
    std::vector<char> a(static_cast<std::size_t>(block_bytes)), b(a.size());
    double best = 1e30;
    for (int it = 0; it < 5; ++it) {
      MPI_Barrier(comm);
      const double t0 = MPI_Wtime();
      MPI_Sendrecv(a.data(), static_cast<int>(a.size()), MPI_CHAR, (rank + 1) % p, 1, b.data(),
                   static_cast<int>(b.size()), MPI_CHAR, (rank - 1 + p) % p, 1, comm,
                   MPI_STATUS_IGNORE);
      best = std::min(best, max_over_ranks(MPI_Wtime() - t0, comm));
    }
    link = double(block_bytes) / best;
  }

  if (rank == 0)
    std::printf("ring attention: P=%d ranks, n=%ld tokens, H=%ld query heads, H_kv=%ld, d=%ld, "
                "float, 1 thread per rank; block %ld tokens = %.2f MB of K/V; link %.2f GB/s\n",
                p, static_cast<long>(n), static_cast<long>(heads), static_cast<long>(kv_heads),
                static_cast<long>(d), static_cast<long>(n / p), double(block_bytes) / 1e6,
                link / 1e9);
  double single = 0;  // the last single-process time (causal, for the zig-zag line)
  for (const int mode : {0, 1, 2}) {  // non-causal, causal, causal zig-zag
    const bool causal = mode > 0;
    auto& ring = mode == 2 ? zigzag : contiguous;
    xfmr::AttentionMask<float> mask;
    mask.set_causal(causal);
    const double flops = (causal ? 2.0 : 4.0) * double(n) * double(n) * double(d) * double(heads);
    double best = 1e30, compute = 0, wait = 0;
    std::int64_t bytes = 0;
    for (int it = 0; it < reps; ++it) {
      MPI_Barrier(comm);
      const double t0 = MPI_Wtime();
      ring.forward(q, k, v, out, mask);
      const double t = max_over_ranks(MPI_Wtime() - t0, comm);
      if (t < best) {
        best = t;
        compute = max_over_ranks(ring.stats().compute_seconds, comm);
        wait = max_over_ranks(ring.stats().wait_seconds, comm);
        std::int64_t sent = ring.stats().bytes_sent;
        MPI_Allreduce(MPI_IN_PLACE, &sent, 1, MPI_INT64_T, MPI_SUM, comm);
        bytes = sent;
      }
    }
    // Baseline: the whole sequence in one process, on every rank at once (random data, same
    // shapes).
    if (mode < 2) {
      std::mt19937_64 r0(99);
      const xfmr::RowMatrix<float> Q = random(r0, n, heads * d), K = random(r0, n, kv_heads * d),
                                   V = random(r0, n, kv_heads * d);
      xfmr::RowMatrix<float> O(n, heads * d);
      xfmr::SoftmaxAttention<float> attn(config);
      single = 1e30;
      for (int it = 0; it < reps; ++it) {
        const double t0 = MPI_Wtime();
        attn.forward(Q, K, V, O, mask);
        single = std::min(single, MPI_Wtime() - t0);
      }
      single = max_over_ranks(single, comm);
    }
    MPI_Barrier(comm);
    if (rank == 0)
      std::printf("  %-14s ring %.3f s (%.1f GFLOP/s in all, %.1f per rank; slowest rank: "
                  "%.3f s computing, %.3f s waiting), %.2f MB sent in all | single process "
                  "%.3f s (%.1f GFLOP/s) | efficiency T1/(P·TP) = %.2f\n",
                  mode == 0 ? "non-causal" : mode == 1 ? "causal" : "causal zig-zag", best, flops / best / 1e9,
                  flops / best / 1e9 / p, compute, wait, double(bytes) / 1e6, single,
                  flops / single / 1e9, single / (p * best));
  }
  MPI_Finalize();
  return 0;
}
