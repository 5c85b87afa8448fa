// SPDX-License-Identifier: MIT
// xfmr_bench entry point: records the ISA, compiler flags and Eigen version in the context so
// that every JSON result says what it was built with (STYLE.md §3.8).
#include <string>

#include <xfmr/detail/eigen.hpp>  // <Eigen/Core> after xfmr/config.hpp (GCC 12, see there)
#include <benchmark/benchmark.h>

#include "xfmr/simd/isa.hpp"

#ifndef XFMR_BENCH_FLAGS
#define XFMR_BENCH_FLAGS "unknown (built outside CMake)"
#endif

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("xfmr_isa", xfmr::simd::native_isa::name);
  benchmark::AddCustomContext("xfmr_flags", XFMR_BENCH_FLAGS);
  benchmark::AddCustomContext("eigen_version", std::to_string(EIGEN_WORLD_VERSION) + "." +
                                                   std::to_string(EIGEN_MAJOR_VERSION) + "." +
                                                   std::to_string(EIGEN_MINOR_VERSION));
#if defined(__VERSION__)
  benchmark::AddCustomContext("compiler", __VERSION__);
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
