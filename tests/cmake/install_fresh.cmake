# Installs the build tree into an empty prefix and checks what landed there.
#   cmake -DBUILD_DIR=<leaselock build> -DPREFIX=<prefix> -DPKGCONFIG_DIR=<lib/pkgconfig>
#         [-DCLI_PROGRAM=<bin/leaselock, when the command is built>] [-DCONFIG=Debug]
#         -P install_fresh.cmake
cmake_minimum_required(VERSION 3.16)

file(REMOVE_RECURSE "${PREFIX}")
set(config_args)
if(CONFIG)
  set(config_args --config "${CONFIG}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}"
                        ${config_args} RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "install: cmake --install failed (${result})")
endif()

foreach(expected
        include/leaselock/leaselock.hpp include/leaselock/version.hpp
        share/cmake/leaselock/leaselockConfig.cmake
        share/cmake/leaselock/leaselockConfigVersion.cmake
        share/cmake/leaselock/leaselockTargets.cmake "${PKGCONFIG_DIR}/leaselock.pc"
        share/doc/leaselock/LICENSE)
  if(NOT EXISTS "${PREFIX}/${expected}")
    message(FATAL_ERROR "install: ${expected} is missing from ${PREFIX}")
  endif()
endforeach()

# A header-only library installs no binaries, and none of the project's own programs but
# the leaselock command (when it is built).
file(GLOB_RECURSE installed RELATIVE "${PREFIX}" "${PREFIX}/*")
foreach(file IN LISTS installed)
  if(NOT file MATCHES "^include/leaselock/.*\\.hpp$"
     AND NOT file MATCHES "^share/(cmake/leaselock|doc/leaselock)/"
     AND NOT file STREQUAL "${PKGCONFIG_DIR}/leaselock.pc"
     AND NOT file STREQUAL "${PKGCONFIG_DIR}/leaselock-postgres.pc"
     AND NOT (CLI_PROGRAM AND file STREQUAL CLI_PROGRAM))
    message(FATAL_ERROR "install: unexpected file ${file} in ${PREFIX}")
  endif()
endforeach()
list(LENGTH installed count)
message(STATUS "install: ${count} files in ${PREFIX}")
