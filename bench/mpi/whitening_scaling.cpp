// SPDX-License-Identifier: MIT
// W6 over MPI: the BERT-whitening fit (N = 100000 × D = 768 float → k = 256 by default) on P
// ranks, each holding N/P rows. Times each phase (the slowest rank's time: every phase starts
// after a barrier), counts the bytes the reduction moves, and prints the scaling model.
//
//   mpiexec -n 1 ./bench_whitening_scaling [N [D [k [repeats]]]]
//   mpiexec -n 2 ./bench_whitening_scaling
//
// Efficiency = T(1 rank) / (P · T(P ranks)) needs both runs: run 1 and 2 ranks in the same
// session (the machine's load changes between sessions) and compare the "fit" lines.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include <xfmr/distributed/whitening.hpp>

namespace {

using xfmr::Index;
using xfmr::RowMatrix;
using Clock = std::chrono::steady_clock;

// The slowest rank's seconds for f(), started together after a barrier.
template <typename F>
double timed(MPI_Comm comm, F&& f) {
  MPI_Barrier(comm);
  const auto t0 = Clock::now();
  f();
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  MPI_Allreduce(MPI_IN_PLACE, &s, 1, MPI_DOUBLE, MPI_MAX, comm);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const MPI_Comm comm = MPI_COMM_WORLD;
  const int rank = xfmr::mpi::rank(comm), p = xfmr::mpi::size(comm);
  const Index n = argc > 1 ? std::atoll(argv[1]) : 100000;
  const Index d = argc > 2 ? std::atoll(argv[2]) : 768;
  const Index k = argc > 3 ? std::atoll(argv[3]) : 256;
  const int repeats = argc > 4 ? std::atoi(argv[4]) : 3;
  const xfmr::mpi::Range mine = xfmr::mpi::shard_range(n, rank, p);

  // The rank's shard: an offset plus Gaussian noise (the fit's cost does not depend on values).
  RowMatrix<float> shard(mine.size(), d);
  std::mt19937_64 rng(1234567 + static_cast<std::uint64_t>(rank));
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (Index i = 0; i < shard.size(); ++i) shard.data()[i] = 3.0f + g(rng);

  xfmr::WhiteningConfig cfg;
  cfg.components = k;
  double best_local = 1e300, best_reduce = 1e300, best_final = 1e300, best_fit = 1e300;
  xfmr::mpi::ReduceVolume vol;
  for (int rep = 0; rep < repeats; ++rep) {
    xfmr::WhiteningStats stats(d, cfg.batch_rows);
    xfmr::BertWhitening<float> w(d, cfg);
    const double t_local = timed(comm, [&] { stats.add<float>(shard); });
    const double t_reduce =
        timed(comm, [&] { vol = xfmr::mpi::allreduce_whitening_stats(comm, stats); });
    const double t_final = timed(comm, [&] {
      w.merge(stats);
      w.finalize();
    });
    xfmr::BertWhitening<float> w2(d, cfg);
    const double t_fit = timed(comm, [&] { xfmr::mpi::fit_whitening(comm, w2, shard); });
    best_local = std::min(best_local, t_local);
    best_reduce = std::min(best_reduce, t_reduce);
    best_final = std::min(best_final, t_final);
    best_fit = std::min(best_fit, t_fit);
  }
  if (rank == 0) {
    const double flops = double(n) * double(d) * double(d);  // DESIGN §5: whitening fit N·D²
    std::printf("W6 whitening fit over MPI: P=%d, N=%lld x D=%lld -> k=%lld (float rows, double "
                "statistics), best of %d\n",
                p, static_cast<long long>(n), static_cast<long long>(d),
                static_cast<long long>(k), repeats);
    std::printf("  local statistics (N/P rows each): %8.3f s  (%.1f GFLOP/s per rank, N·D²/P)\n",
                best_local, flops / p / best_local / 1e9);
    std::printf("  reduction (tree + broadcast):     %8.3f s  (%lld messages x %.2f MB = %.2f MB, "
                "%d rounds; %.2f GB/s per message)\n",
                best_reduce, static_cast<long long>(vol.messages),
                double(vol.message_bytes) / 1e6, double(vol.bytes()) / 1e6, vol.rounds,
                vol.rounds ? double(vol.message_bytes) * vol.rounds / best_reduce / 1e9 : 0.0);
    std::printf("  finalize (eigensolver, every rank): %6.3f s\n", best_final);
    std::printf("  fit_whitening end to end:         %8.3f s\n", best_fit);
  }
  MPI_Finalize();
  return 0;
}
