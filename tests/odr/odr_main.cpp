#include <cstdio>

#include "odr.hpp"

int main() {
  const bool a = odr_test::exclusive_lease_in_a();
  const bool b = odr_test::shared_lease_in_b();
  std::printf("odr: translation unit a %s, b %s\n", a ? "ok" : "FAILED", b ? "ok" : "FAILED");
  return a && b ? 0 : 1;
}
