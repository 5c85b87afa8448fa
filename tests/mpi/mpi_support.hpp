// SPDX-License-Identifier: MIT
// Helpers for the MPI tests: one random stream shared by all ranks, and the message of an
// expected exception caught on every rank.
#ifndef XFMR_TESTS_MPI_SUPPORT_HPP
#define XFMR_TESTS_MPI_SUPPORT_HPP

#include <mpi.h>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

namespace xfmr_test {

/// The same generator on every rank: Catch's --rng-seed of rank 0 (broadcast, so even
/// `--rng-seed time` gives one stream) and a per-call salt. Collective over comm.
inline std::mt19937_64 shared_rng(MPI_Comm comm, std::uint64_t salt = 0) {
  std::uint64_t seed = Catch::rngSeed();
  MPI_Bcast(&seed, 1, MPI_UINT64_T, 0, comm);
  return std::mt19937_64(seed * 0x9E3779B97F4A7C15ull + salt);
}

/// Runs f once; returns the what() of the std::invalid_argument it threw, or "" if none. Any
/// other exception escapes (the test fails).
template <typename F>
std::string invalid_argument_message(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

/// 1 on every rank if `ok` holds on every rank, else 0 (a collective AND, so that a rank
/// knows whether the others passed).
inline bool all_ranks(MPI_Comm comm, bool ok) {
  int v = ok ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MIN, comm);
  return v == 1;
}

}  // namespace xfmr_test

#endif  // XFMR_TESTS_MPI_SUPPORT_HPP
