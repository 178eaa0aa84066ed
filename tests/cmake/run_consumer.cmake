# Builds one consumer project from scratch and runs its program (`consumer` unless
# CONSUMER_PROGRAM names another).
#   cmake -DCONSUMER_SOURCE_DIR=... -DCONSUMER_BINARY_DIR=... -DCONSUMER_GENERATOR=...
#         -DCONSUMER_SETTINGS=<initial cache> [-DCONSUMER_CONFIG=Debug]
#         [-DCONSUMER_PROGRAM=name] [-DCONSUMER_CONFIGURE_ARGS=a;b] -P run_consumer.cmake
cmake_minimum_required(VERSION 3.16)
if(NOT CONSUMER_PROGRAM)
  set(CONSUMER_PROGRAM consumer)
endif()

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "consumer: ${what} failed (${result}): ${ARGN}")
  endif()
endfunction()

# A fresh build directory each time: a stale one could hide a broken route.
file(REMOVE_RECURSE "${CONSUMER_BINARY_DIR}")

set(config_args)
if(CONSUMER_CONFIG)
  set(config_args "-DCMAKE_BUILD_TYPE=${CONSUMER_CONFIG}")
endif()
run_step(configure "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${CONSUMER_BINARY_DIR}"
         -G "${CONSUMER_GENERATOR}" -C "${CONSUMER_SETTINGS}" ${config_args}
         ${CONSUMER_CONFIGURE_ARGS})

set(build_args)
if(CONSUMER_CONFIG)
  set(build_args --config "${CONSUMER_CONFIG}")
endif()
run_step(build "${CMAKE_COMMAND}" --build "${CONSUMER_BINARY_DIR}" ${build_args})

# Single-config generators put the program at the top; multi-config ones in <config>/.
foreach(candidate "${CONSUMER_BINARY_DIR}/${CONSUMER_PROGRAM}"
                  "${CONSUMER_BINARY_DIR}/${CONSUMER_CONFIG}/${CONSUMER_PROGRAM}")
  if(EXISTS "${candidate}" AND NOT IS_DIRECTORY "${candidate}")
    run_step(run "${candidate}")
    message(STATUS "consumer: ${CONSUMER_SOURCE_DIR} built and ran")
    return()
  endif()
endforeach()
message(FATAL_ERROR "consumer: no ${CONSUMER_PROGRAM} program in ${CONSUMER_BINARY_DIR}")
