// The test runner: doctest's main, from the system's doctest package.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
