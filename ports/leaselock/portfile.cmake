# vcpkg port for leaselock, a header-only library: nothing to build, so one (release)
# configuration is enough.
set(VCPKG_BUILD_TYPE release)

# Until leaselock is published, the port takes the source tree this port lives in:
#   vcpkg install leaselock --overlay-ports=<leaselock checkout>/ports
# For a released version, replace the next line with
#   vcpkg_from_github(OUT_SOURCE_PATH SOURCE_PATH REPO <owner>/leaselock REF "v${VERSION}"
#                     SHA512 <sha512 of that archive> HEAD_REF main)
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DLEASELOCK_BUILD_TESTS=OFF
        -DLEASELOCK_BUILD_EXAMPLES=OFF
        -DLEASELOCK_BUILD_BENCH=OFF
        -DLEASELOCK_BUILD_CONSUMER_TESTS=OFF
        -DLEASELOCK_INSTALL=ON
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/leaselock)
vcpkg_fixup_pkgconfig()

# The license is installed below as vcpkg expects it; drop the project's own copy.
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug" "${CURRENT_PACKAGES_DIR}/share/doc")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
