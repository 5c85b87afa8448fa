// SPDX-License-Identifier: MIT
// Catch2 main for the MPI tests (tests/mpi): MPI_Init, the Catch2 session on every rank,
// MPI_Finalize. Rank 0 prints its report as usual; the other ranks capture theirs and print it,
// headed by their rank, only when one of their tests failed, so a failure names its rank and a
// pass reads like any other test executable. The exit code is non-zero on every failing rank
// (mpiexec then fails).
#define CATCH_CONFIG_RUNNER
#include <mpi.h>

#include <iostream>
#include <sstream>
#include <vector>

#include <catch2/catch.hpp>

int main(int argc, char** argv) {
  if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
    std::cerr << "xfmr mpi tests: MPI_Init failed\n";
    return 2;
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  std::ostringstream captured;
  std::streambuf* const cout_buf = std::cout.rdbuf();
  if (rank != 0) std::cout.rdbuf(captured.rdbuf());  // Catch2 v2 reports to std::cout
  int failed = 0;
  {
    Catch::Session session;
    failed = session.run(argc, argv);
  }
  std::cout.rdbuf(cout_buf);

  // Which ranks failed, for rank 0's summary line.
  const int mine = failed != 0 ? 1 : 0;
  std::vector<int> all(static_cast<std::size_t>(size), 0);
  MPI_Gather(&mine, 1, MPI_INT, all.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (rank != 0 && failed != 0)
    std::cerr << "==== rank " << rank << " of " << size << " failed; its report:\n"
              << captured.str() << "==== end of rank " << rank << "\n";
  if (rank == 0) {
    std::ostringstream bad;
    for (int r = 0; r < size; ++r)
      if (all[static_cast<std::size_t>(r)]) bad << ' ' << r;
    if (bad.str().empty())
      std::cout << "xfmr mpi tests: all " << size << " ranks passed\n";
    else
      std::cout << "xfmr mpi tests: FAILED on rank(s)" << bad.str() << " of " << size << "\n";
  }
  MPI_Finalize();
  return failed != 0 ? 1 : 0;
}
