# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# cmake -DDEMO=<path to vmres-demo> -P check_demo_budget.cmake
# Case 2 under a 1 MiB memory budget: the demo must pass its own checks (exit 0)
# and its hotplug threads must have waited for RCU callbacks at least once.
execute_process(COMMAND "${DEMO}" --seconds 1 --vcpus 2 --hotplug-threads 3 --devices 48
                        --seed 7 --mem-budget 1
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 100)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "vmres-demo --mem-budget 1: exit status '${rc}'\n${out}${err}")
endif()
if(NOT out MATCHES "memory budget: 1 MiB \\(--mem-budget\\); hotplug threads waited for RCU callbacks ([1-9][0-9]*) time")
  message(FATAL_ERROR "vmres-demo --mem-budget 1: no wait for RCU callbacks:\n${out}")
endif()
message(STATUS "vmres-demo --mem-budget 1: waited for RCU callbacks ${CMAKE_MATCH_1} times")
