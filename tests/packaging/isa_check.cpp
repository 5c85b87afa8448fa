// Compile-only ISA check: the umbrella header under an ISA this machine may not run.
// Built as an object with -mavx512f … (XFMR_ISA_CHECK_AVX512), or with -fsyntax-only by
// aarch64-linux-gnu-g++ (XFMR_ISA_CHECK_NEON) when the cross compiler is installed.
#include <xfmr/xfmr.hpp>

#if defined(XFMR_ISA_CHECK_AVX512) && !defined(__AVX512F__)
#error "isa_check.cpp: expected -mavx512f"
#endif
#if defined(XFMR_ISA_CHECK_NEON) && !(defined(__aarch64__) && defined(__ARM_NEON))
#error "isa_check.cpp: expected an aarch64 compiler with NEON"
#endif
