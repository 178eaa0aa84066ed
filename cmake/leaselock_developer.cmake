# Settings for leaselock's own tests, examples and benchmarks. Nothing here reaches the
# leaselock INTERFACE target, so users never inherit these flags.

# Strict warnings (and -Werror, see LEASELOCK_WARNINGS_AS_ERRORS) for one of our targets.
function(leaselock_use_strict_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wconversion
                                             -Wsign-conversion)
    if(LEASELOCK_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4 /permissive-)
    if(LEASELOCK_WARNINGS_AS_ERRORS)
      target_compile_options(${target} PRIVATE /WX)
    endif()
  endif()
  # Standard C++ only (-std=c++17, not gnu++17), so GNU extensions do not slip in.
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
endfunction()

# An executable of ours: links leaselock and gets the strict warnings.
function(leaselock_add_program target)
  add_executable(${target} ${ARGN})
  target_link_libraries(${target} PRIVATE leaselock::leaselock)
  leaselock_use_strict_warnings(${target})
endfunction()

# Writes `content` to the generated source `path` only when it differs from what is
# there, so reconfiguring does not trigger a rebuild.
function(leaselock_write_if_changed path content)
  set(old_content "")
  if(EXISTS "${path}")
    file(READ "${path}" old_content)
  endif()
  if(NOT old_content STREQUAL content)
    file(WRITE "${path}" "${content}")
  endif()
endfunction()
