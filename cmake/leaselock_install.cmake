# Install rules: headers, the CMake package (find_package(leaselock) ->
# leaselock::leaselock) and a pkg-config file. The CMake package is architecture-
# independent and goes under share/. leaselock.pc has a Libs: line (-pthread, which a
# separate link step needs), so it goes where pkg-config files with libraries belong:
# <libdir>/pkgconfig.

include(CMakePackageConfigHelpers)

set(LEASELOCK_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/leaselock"
    CACHE STRING "Where leaselockConfig.cmake is installed (relative to the prefix)")
set(LEASELOCK_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
    CACHE STRING "Where leaselock.pc is installed (relative to the prefix)")

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/leaselock"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" FILES_MATCHING PATTERN "*.hpp")
install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" DESTINATION "${CMAKE_INSTALL_DOCDIR}")

install(TARGETS leaselock EXPORT leaselockTargets)
install(EXPORT leaselockTargets NAMESPACE leaselock::
        DESTINATION "${LEASELOCK_INSTALL_CMAKEDIR}")
# leaselock::postgres in an export of its own: the package loads it only where libpq is
# found (find_package(leaselock COMPONENTS postgres) requires it).
if(TARGET leaselock_postgres)
  install(TARGETS leaselock_postgres EXPORT leaselockPostgresTargets)
  install(EXPORT leaselockPostgresTargets NAMESPACE leaselock::
          DESTINATION "${LEASELOCK_INSTALL_CMAKEDIR}")
endif()

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/leaselockConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/leaselockConfig.cmake"
  INSTALL_DESTINATION "${LEASELOCK_INSTALL_CMAKEDIR}")

# While the major version is 0, a minor release may break the API (semver), so only the
# same 0.MINOR counts as compatible; from 1.0 on, the same major version does.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(leaselock_compatibility SameMinorVersion)
else()
  set(leaselock_compatibility SameMajorVersion)
endif()
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/leaselockConfigVersion.cmake"
  COMPATIBILITY ${leaselock_compatibility} ARCH_INDEPENDENT)

install(FILES "${PROJECT_BINARY_DIR}/leaselockConfig.cmake"
              "${PROJECT_BINARY_DIR}/leaselockConfigVersion.cmake"
        DESTINATION "${LEASELOCK_INSTALL_CMAKEDIR}")

# leaselock.pc finds the headers relative to its own location (${pcfiledir}), so the
# installed tree can be moved, or installed with `cmake --install --prefix`.
if(IS_ABSOLUTE "${LEASELOCK_INSTALL_PKGCONFIGDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(leaselock_pc_prefix "${CMAKE_INSTALL_PREFIX}")
  set(leaselock_pc_includedir "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH leaselock_pc_up "/${LEASELOCK_INSTALL_PKGCONFIGDIR}" "/")
  string(REGEX REPLACE "/$" "" leaselock_pc_up "${leaselock_pc_up}")
  set(leaselock_pc_prefix "\${pcfiledir}/${leaselock_pc_up}")
  set(leaselock_pc_includedir "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/leaselock.pc.in"
               "${PROJECT_BINARY_DIR}/leaselock.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/leaselock.pc"
        DESTINATION "${LEASELOCK_INSTALL_PKGCONFIGDIR}")
# leaselock-postgres.pc: leaselock plus libpq, for PostgresBackend.
configure_file("${PROJECT_SOURCE_DIR}/cmake/leaselock-postgres.pc.in"
               "${PROJECT_BINARY_DIR}/leaselock-postgres.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/leaselock-postgres.pc"
        DESTINATION "${LEASELOCK_INSTALL_PKGCONFIGDIR}")
