// ODR check (tests/build_checks.cmake (b)): this main, linked with the header-check objects (one
// translation unit per public header and one for the umbrella), links only if no header defines
// a non-inline function or variable at namespace scope.
#include <xfmr/version.hpp>

int main() { return XFMR_VERSION_MAJOR >= 0 ? 0 : 1; }
