#include <xfmr/xfmr.hpp>
#include <xfmr/version.hpp>

int main() { return XFMR_VERSION_MAJOR >= 0 ? 0 : 1; }
