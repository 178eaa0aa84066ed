# Conan 2 recipe for leaselock, kept in the library's own repository:
#   conan create .                       # package the working tree into the local cache
# then, in a consumer: requires = "leaselock/<version>" with the CMakeDeps generator gives
#   find_package(leaselock CONFIG REQUIRED) and the target leaselock::leaselock;
# PkgConfigDeps gives leaselock.pc.
import os
import re

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.files import copy, load
from conan.tools.layout import basic_layout

required_conan_version = ">=2.0"


class LeaselockConan(ConanFile):
    name = "leaselock"
    description = ("Leases and locks on named keys for threads and processes (header-only C++17). "
                   "The in-process library builds with any C++17 compiler; FileBackend, for "
                   "processes of one machine, is Linux-only.")
    license = "MIT"
    topics = ("lock", "lease", "mutex", "ipc", "concurrency", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    no_copy_source = True
    # A header-only package needs only the headers and the license: they are copied
    # as they are, so CMake is not needed to create the package.
    exports_sources = "include/*", "LICENSE"

    def set_version(self):
        # The version lives in one place: include/leaselock/version.hpp.
        if self.version:
            return
        header = load(self, os.path.join(self.recipe_folder, "include", "leaselock", "version.hpp"))
        parts = []
        for part in ("MAJOR", "MINOR", "PATCH"):
            match = re.search(rf"#define LEASELOCK_VERSION_{part} +(\d+)", header)
            parts.append(match.group(1))
        self.version = ".".join(parts)

    def layout(self):
        basic_layout(self)

    def package_id(self):
        # The same headers serve every compiler, architecture and build type.
        self.info.clear()

    def validate(self):
        # Every OS: <leaselock/leaselock.hpp> (LockManager, InProcessBackend, ManualClock,
        # NamedMutex) needs only C++17; it offers FileBackend only where that compiles
        # (Linux), and <leaselock/backends/file.hpp> stops with an #error elsewhere.
        check_min_cppstd(self, 17)

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        copy(self, "*.hpp", os.path.join(self.source_folder, "include"),
             os.path.join(self.package_folder, "include"))

    def package_info(self):
        # The same names as leaselock's own CMake package and pkg-config file.
        self.cpp_info.set_property("cmake_file_name", "leaselock")
        self.cpp_info.set_property("cmake_target_name", "leaselock::leaselock")
        self.cpp_info.set_property("pkg_config_name", "leaselock")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        if self.settings.os in ("Linux", "FreeBSD"):
            self.cpp_info.system_libs = ["pthread"]
