# The pkg-config route: compile consumer.cpp with only what `pkg-config leaselock` says.
#   cmake -DPREFIX=<install prefix> -DPKGCONFIG_DIR=<lib/pkgconfig> -DWORK_DIR=...
#         -DCXX=<compiler> -DCONSUMER_SOURCE=...
#         -DEXPECTED_VERSION=x.y.z [-DPACKAGE=leaselock-postgres] -P pkg_config.cmake
cmake_minimum_required(VERSION 3.16)
if(NOT PACKAGE)
  set(PACKAGE leaselock)
endif()

find_program(PKG_CONFIG NAMES pkg-config pkgconf)
if(NOT PKG_CONFIG)
  message(FATAL_ERROR "pkg-config: not found (Debian: apt-get install pkg-config)")
endif()

# Only the fresh install may answer, not a leaselock.pc installed elsewhere.
set(ENV{PKG_CONFIG_LIBDIR} "${PREFIX}/${PKGCONFIG_DIR}")
if(NOT PACKAGE STREQUAL "leaselock")  # it requires system packages (libpq): search after
  execute_process(COMMAND "${PKG_CONFIG}" --variable pc_path pkg-config
                  OUTPUT_VARIABLE system_path OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(ENV{PKG_CONFIG_LIBDIR} "${PREFIX}/${PKGCONFIG_DIR}:${system_path}")
endif()
unset(ENV{PKG_CONFIG_PATH})

function(pkg_config_query out)
  execute_process(COMMAND "${PKG_CONFIG}" ${ARGN} ${PACKAGE} RESULT_VARIABLE result
                  OUTPUT_VARIABLE output OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "pkg-config: `pkg-config ${ARGN} ${PACKAGE}` failed (${result})")
  endif()
  set(${out} "${output}" PARENT_SCOPE)
endfunction()

pkg_config_query(version --modversion)
if(NOT version STREQUAL EXPECTED_VERSION)
  message(FATAL_ERROR "pkg-config: version ${version}, expected ${EXPECTED_VERSION}")
endif()
pkg_config_query(cflags --cflags)
pkg_config_query(libs --libs)
message(STATUS "pkg-config: --cflags ${cflags}; --libs ${libs}")
# The install went to a prefix other than CMAKE_INSTALL_PREFIX, so this also proves that
# leaselock.pc is relocatable.
if(NOT cflags MATCHES "-I${PREFIX}/")
  message(FATAL_ERROR "pkg-config: --cflags does not point into ${PREFIX}: ${cflags}")
endif()

separate_arguments(cflags UNIX_COMMAND "${cflags}")
separate_arguments(libs UNIX_COMMAND "${libs}")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
# Compile with --cflags and link with --libs in separate steps, as build systems do.
execute_process(COMMAND "${CXX}" -std=c++17 ${cflags} -c "${CONSUMER_SOURCE}" -o
                        "${WORK_DIR}/consumer.o" RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "pkg-config: compiling the consumer failed (${result})")
endif()
execute_process(COMMAND "${CXX}" "${WORK_DIR}/consumer.o" -o "${WORK_DIR}/consumer" ${libs}
                RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "pkg-config: linking the consumer failed (${result})")
endif()
execute_process(COMMAND "${WORK_DIR}/consumer" RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "pkg-config: the consumer exited with ${result}")
endif()
message(STATUS "pkg-config: consumer built and ran")
