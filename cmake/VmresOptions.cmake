# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Build options, warnings and sanitizers for libvmres.

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
endif()

set(CMAKE_C_STANDARD 11)
set(CMAKE_C_STANDARD_REQUIRED ON)
set(CMAKE_C_EXTENSIONS OFF)

option(BUILD_SHARED_LIBS "Build libvmres as a shared library" ON)
option(VMRES_BUILD_TESTS "Build the cmocka tests and register them with ctest" ${PROJECT_IS_TOP_LEVEL})
option(VMRES_BUILD_BENCH "Build the google-benchmark suite (needs C++)" ${PROJECT_IS_TOP_LEVEL})
option(VMRES_BUILD_EXAMPLES "Build the vmres-demo program" ${PROJECT_IS_TOP_LEVEL})
option(VMRES_WERROR "Treat warnings as errors" ON)
option(VMRES_COUNT_ATOMICS
       "Benchmarks only: count the locked instructions each ID pair makes (bench_id's locked_* counters; not for timing)"
       OFF)

set(VMRES_RCU_FLAVOR "memb" CACHE STRING "liburcu flavor: memb, qsbr, mb or bp")
set_property(CACHE VMRES_RCU_FLAVOR PROPERTY STRINGS memb qsbr mb bp)
if(NOT VMRES_RCU_FLAVOR MATCHES "^(memb|qsbr|mb|bp)$")
  message(FATAL_ERROR "VMRES_RCU_FLAVOR must be memb, qsbr, mb or bp (got '${VMRES_RCU_FLAVOR}')")
endif()
string(TOUPPER "${VMRES_RCU_FLAVOR}" VMRES_RCU_FLAVOR_UPPER)

set(VMRES_SANITIZE "" CACHE STRING "Sanitizers: '', 'address,undefined' or 'thread'")
set_property(CACHE VMRES_SANITIZE PROPERTY STRINGS "" "address,undefined" "thread")
if(VMRES_SANITIZE STREQUAL "address,undefined" OR VMRES_SANITIZE STREQUAL "undefined,address")
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined)
elseif(VMRES_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT VMRES_SANITIZE STREQUAL "")
  message(FATAL_ERROR "VMRES_SANITIZE must be '', 'address,undefined' or 'thread'")
endif()

set(VMRES_WARNING_FLAGS -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wformat=2 -Wvla)
if(VMRES_WERROR)
  list(APPEND VMRES_WARNING_FLAGS -Werror)
endif()
