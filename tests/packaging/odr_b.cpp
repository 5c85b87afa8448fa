// ODR check, part 2: the umbrella header in a second translation unit, linked with odr_a.cpp.
#include <xfmr/xfmr.hpp>
#include <xfmr/version.hpp>

int xfmr_odr_a();

int main() {
  const int expected = XFMR_VERSION_MAJOR * 10000 + XFMR_VERSION_MINOR * 100 + XFMR_VERSION_PATCH;
  return xfmr_odr_a() == expected ? 0 : 1;
}
