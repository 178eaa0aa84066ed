# The vcpkg manifest states the version by hand; it must match version.hpp.
#   cmake -DMANIFEST=ports/leaselock/vcpkg.json -DEXPECTED_VERSION=x.y.z -P vcpkg_version.cmake
cmake_minimum_required(VERSION 3.16)
file(READ "${MANIFEST}" manifest)
if(NOT manifest MATCHES "\"version\": *\"([^\"]+)\"")
  message(FATAL_ERROR "vcpkg: no \"version\" in ${MANIFEST}")
endif()
if(NOT CMAKE_MATCH_1 STREQUAL EXPECTED_VERSION)
  message(FATAL_ERROR
          "vcpkg: ${MANIFEST} says ${CMAKE_MATCH_1}, version.hpp says ${EXPECTED_VERSION}")
endif()
