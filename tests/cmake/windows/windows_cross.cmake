# The in-process library on Windows, from Linux: builds program.cpp with a MinGW-w64 cross
# compiler (strict warnings as errors, through the umbrella header), checks that
# backends/file.hpp stops with its clear #error, and, given WINE, runs the program.
#   cmake -DCXX=<x86_64-w64-mingw32-g++> -DINCLUDE_DIR=<leaselock>/include -DWORK_DIR=...
#         [-DWINE=<wine64>] -DSTEP=build|run -P windows_cross.cmake
cmake_minimum_required(VERSION 3.16)

set(program "${WORK_DIR}/program.exe")

if(STEP STREQUAL "build")
  file(REMOVE_RECURSE "${WORK_DIR}")
  file(MAKE_DIRECTORY "${WORK_DIR}")
  # -static: the program runs without MinGW's DLLs beside it.
  execute_process(
    COMMAND "${CXX}" -std=c++17 -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Werror
            -O1 -static "-I${INCLUDE_DIR}" "${CMAKE_CURRENT_LIST_DIR}/program.cpp" -o "${program}"
    RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "windows: the in-process library does not compile for Windows (${result})")
  endif()

  file(WRITE "${WORK_DIR}/file_backend.cpp" "#include <leaselock/backends/file.hpp>\n")
  execute_process(COMMAND "${CXX}" -std=c++17 "-I${INCLUDE_DIR}" -fsyntax-only
                          "${WORK_DIR}/file_backend.cpp"
                  RESULT_VARIABLE result ERROR_VARIABLE errors OUTPUT_VARIABLE errors)
  if(result EQUAL 0)
    message(FATAL_ERROR "windows: backends/file.hpp compiled for Windows; it must refuse")
  endif()
  if(NOT errors MATCHES "#error \"leaselock/backends/file.hpp: FileBackend needs Linux")
    message(FATAL_ERROR "windows: backends/file.hpp failed without its #error:\n${errors}")
  endif()
  message(STATUS "windows: program.exe built; backends/file.hpp refuses with its #error")
elseif(STEP STREQUAL "run")
  # A wine prefix of our own, in the build tree: nothing outside it is touched.
  # (Kept beside WORK_DIR, which each build empties: making a prefix takes seconds.)
  set(ENV{WINEPREFIX} "${WORK_DIR}-wine-prefix")
  set(ENV{WINEDEBUG} "-all")
  execute_process(COMMAND "${WINE}" "${program}" RESULT_VARIABLE result
                  OUTPUT_VARIABLE output ERROR_VARIABLE wine_messages)
  message(STATUS "windows: ${output}")
  # Stop this prefix's wineserver now, rather than seconds after the test ends.
  get_filename_component(wine_dir "${WINE}" DIRECTORY)
  find_program(WINESERVER NAMES wineserver64 wineserver HINTS "${wine_dir}" /usr/lib/wine)
  if(WINESERVER)
    execute_process(COMMAND "${WINESERVER}" -k OUTPUT_QUIET ERROR_QUIET)
  endif()
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "windows: program.exe under wine exited with ${result}:\n${wine_messages}")
  endif()
else()
  message(FATAL_ERROR "windows: STEP must be build or run")
endif()
