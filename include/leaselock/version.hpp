// leaselock/version.hpp — the library's version, as macros and one integer.
//
// CMake reads LEASELOCK_VERSION_MAJOR/MINOR/PATCH from this file for
// project(VERSION), so this header is the single place the version lives.
#pragma once

#define LEASELOCK_VERSION_MAJOR 0
#define LEASELOCK_VERSION_MINOR 1
#define LEASELOCK_VERSION_PATCH 0

// One comparable integer: MAJOR * 10000 + MINOR * 100 + PATCH.
#define LEASELOCK_VERSION \
  (LEASELOCK_VERSION_MAJOR * 10000 + LEASELOCK_VERSION_MINOR * 100 + LEASELOCK_VERSION_PATCH)
