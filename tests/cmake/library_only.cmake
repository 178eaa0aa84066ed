# Included by the add_subdirectory and FetchContent consumers after leaselock was added:
# as a subproject, leaselock must define its library targets (leaselock, and
# leaselock_postgres where libpq is found) and nothing else — none of its tests,
# examples, benchmarks or the command, and no ctest tests.

function(leaselock_collect_directories dir out)
  set(all "${dir}")
  get_property(children DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
  foreach(child IN LISTS children)
    leaselock_collect_directories("${child}" grandchildren)
    list(APPEND all ${grandchildren})
  endforeach()
  set(${out} "${all}" PARENT_SCOPE)
endfunction()

function(leaselock_assert_library_only leaselock_dir)
  foreach(option LEASELOCK_BUILD_TESTS LEASELOCK_BUILD_EXAMPLES LEASELOCK_BUILD_BENCH
                 LEASELOCK_INSTALL)
    if(${option})
      message(FATAL_ERROR "consumer: ${option} is ON in a subproject build")
    endif()
  endforeach()
  leaselock_collect_directories("${leaselock_dir}" directories)
  foreach(dir IN LISTS directories)
    get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
    list(REMOVE_ITEM targets leaselock leaselock_postgres)
    if(targets)
      message(FATAL_ERROR "consumer: leaselock as a subproject defines targets: ${targets}")
    endif()
    get_property(tests DIRECTORY "${dir}" PROPERTY TESTS)
    if(tests)
      message(FATAL_ERROR "consumer: leaselock as a subproject defines tests: ${tests}")
    endif()
  endforeach()
  if(NOT TARGET leaselock::leaselock)
    message(FATAL_ERROR "consumer: leaselock::leaselock is missing")
  endif()
  message(STATUS "consumer: leaselock added the library target and nothing else")
endfunction()
