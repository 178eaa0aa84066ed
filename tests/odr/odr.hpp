// The ODR test: two translation units (odr_a.cpp, odr_b.cpp) include the whole library
// and instantiate the same templates; the program links only if every function and
// variable the headers define is inline (or a template), as a header-only library needs.
#pragma once

namespace odr_test {

bool exclusive_lease_in_a();
bool shared_lease_in_b();

}  // namespace odr_test
