# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# cmake -DDEMO=<path to vmres-demo> -P check_demo_budget.cmake
# Case 2 under a 1 KiB memory budget: the demo must pass its own checks (exit 0)
# and its hotplug threads must have waited for RCU callbacks at least once. The
# system object alone is larger than 1 KiB, so every plug or unplug finds the
# budget exceeded and waits, however fast the callbacks run. (A 1 MiB budget is
# crossed only while retired memory piles up faster than the callback thread
# frees it: under TSAN on a slow 2-CPU machine it never was.)
execute_process(COMMAND "${DEMO}" --seconds 1 --vcpus 2 --hotplug-threads 3 --devices 48
                        --seed 7 --mem-budget 1K
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 100)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "vmres-demo --mem-budget 1K: exit status '${rc}'\n${out}${err}")
endif()
if(NOT out MATCHES "memory budget: 1 KiB \\(--mem-budget\\); hotplug threads waited for RCU callbacks ([1-9][0-9]*) time")
  message(FATAL_ERROR "vmres-demo --mem-budget 1K: no wait for RCU callbacks:\n${out}")
endif()
message(STATUS "vmres-demo --mem-budget 1K: waited for RCU callbacks ${CMAKE_MATCH_1} times")
