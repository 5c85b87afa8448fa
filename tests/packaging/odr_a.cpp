// ODR check, part 1: the umbrella header in a first translation unit. Linking this with
// odr_b.cpp fails if a header defines a non-inline function or variable at namespace scope.
#include <xfmr/xfmr.hpp>
#include <xfmr/version.hpp>

int xfmr_odr_a() { return XFMR_VERSION_MAJOR * 10000 + XFMR_VERSION_MINOR * 100 + XFMR_VERSION_PATCH; }
