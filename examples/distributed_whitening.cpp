// SPDX-License-Identifier: MIT
// BERT-whitening fitted over MPI ranks (issue 13): each rank holds one shard of a corpus of
// sentence vectors, accumulates its statistics, and mpi::fit_whitening merges them (a fixed
// binomial tree of Chan merges in double, then a broadcast) so that every rank ends with the same
// whitening. Each rank then whitens its own shard; the statistics of the whitened vectors, reduced
// the same way, must be mean ≈ 0 and covariance ≈ I_k over the whole corpus.
//
//   mpirun -np 2 ./distributed_whitening [N [D [k]]]          (default 20000 × 256 → 64)
//   mpirun -np 8 --hostfile hosts ./distributed_whitening     (several machines, same binary)
//
// The vectors are synthetic but shaped like raw BERT embeddings (a large common offset and a few
// dominant directions, kexue 8069); row i is drawn from its own seed, so the corpus is the same
// for any number of ranks. Exits non-zero if the whitened statistics are off.
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include <xfmr/distributed/whitening.hpp>

namespace {

using xfmr::Index;
using xfmr::RowMatrix;

// Rows [begin, end) of the corpus: offset 3 + a few strong directions + isotropic noise.
RowMatrix<float> corpus_rows(Index begin, Index end, Index d) {
  std::mt19937_64 dir_rng(12345);
  std::normal_distribution<double> g(0.0, 1.0);
  RowMatrix<double> dirs(4, d);
  for (Index i = 0; i < dirs.size(); ++i) dirs.data()[i] = g(dir_rng);
  RowMatrix<float> x(end - begin, d);
  for (Index r = begin; r < end; ++r) {
    std::mt19937_64 rng(0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(r + 1));
    double a[4];
    for (int i = 0; i < 4; ++i) a[i] = (6.0 - i) * g(rng);
    for (Index j = 0; j < d; ++j) {
      double v = 3.0 + 0.5 * g(rng);
      for (int i = 0; i < 4; ++i) v += a[i] * dirs(i, j);
      x(r - begin, j) = static_cast<float>(v);
    }
  }
  return x;
}

int run(MPI_Comm comm, Index n, Index d, Index k) {
  const int rank = xfmr::mpi::rank(comm), size = xfmr::mpi::size(comm);
  const xfmr::mpi::Range mine = xfmr::mpi::shard_range(n, rank, size);
  const RowMatrix<float> shard = corpus_rows(mine.begin, mine.end, d);

  xfmr::WhiteningConfig cfg;
  cfg.components = k;
  cfg.epsilon = 0;  // full-rank data (N ≫ D): no eigenvalue floor, so the covariance is I exactly
  xfmr::BertWhitening<float> whitening(d, cfg);
  MPI_Barrier(comm);
  const auto t0 = std::chrono::steady_clock::now();
  const xfmr::mpi::ReduceVolume vol = xfmr::mpi::fit_whitening(comm, whitening, shard);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Whiten the own shard; reduce the statistics of the whitened vectors over all ranks.
  RowMatrix<float> y(shard.rows(), k);
  whitening.transform(shard, y);
  xfmr::WhiteningStats ys(k);
  ys.add<float>(y);
  xfmr::mpi::allreduce_whitening_stats(comm, ys);
  const double mean_err = ys.mean().cwiseAbs().maxCoeff();
  const double cov_err =
      (ys.covariance() - Eigen::MatrixXd::Identity(k, k)).cwiseAbs().maxCoeff();

  if (rank == 0) {
    std::printf("distributed_whitening: %d rank(s), N = %lld rows x D = %lld -> k = %lld\n", size,
                static_cast<long long>(n), static_cast<long long>(d),
                static_cast<long long>(k));
    std::printf("  shard of rank 0: rows [%lld, %lld)\n", static_cast<long long>(mine.begin),
                static_cast<long long>(mine.end));
    std::printf("  fit (local statistics + reduction + eigensolver): %.3f s\n", seconds);
    std::printf("  reduction: %lld messages x %lld bytes = %.2f MB in %d rounds\n",
                static_cast<long long>(vol.messages), static_cast<long long>(vol.message_bytes),
                static_cast<double>(vol.bytes()) / 1e6, vol.rounds);
    std::printf("  leading eigenvalues: %.3f %.3f %.3f %.3f, λ_k = %.4f\n",
                whitening.eigenvalues()[0], whitening.eigenvalues()[1],
                whitening.eigenvalues()[2], whitening.eigenvalues()[3],
                whitening.eigenvalues()[k - 1]);
    std::printf("  whitened corpus: max |mean| = %.2e, max |cov - I| = %.2e\n", mean_err,
                cov_err);
  }
  // Float data and a float transform: ~1e-6 relative per entry, summed over D terms.
  return mean_err < 1e-3 && cov_err < 1e-3 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rc = 0;
  try {
    const Index n = argc > 1 ? std::atoll(argv[1]) : 20000;
    const Index d = argc > 2 ? std::atoll(argv[2]) : 256;
    const Index k = argc > 3 ? std::atoll(argv[3]) : 64;
    rc = run(MPI_COMM_WORLD, n, d, k);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "distributed_whitening: %s\n", e.what());
    rc = 1;
  }
  MPI_Finalize();
  return rc;
}
