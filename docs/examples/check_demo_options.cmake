# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# cmake -DDEMO=<path to vmres-demo> -P check_demo_options.cmake
# Each bad command line must exit with status 2 and say why on stderr.
# One argument each (getopt_long takes --opt=value), so a list element is one command line.
set(bad_lines
    --vcpus=0 --vcpus=257 --vcpus=two --vcpus=-1 --vcpus=3x --vcpus=
    --hotplug-threads=0 --hotplug-threads=65
    --seconds=0 --seconds=-1 --seconds=nan --seconds=inf --seconds=1e9 --seconds=fast
    --devices=0 --devices=4097 --seed=-5 --seed=18446744073709551616
    --mem-budget=-1 --mem-budget=65537 --mem-budget=lots --mem-budget=
    --mem-budget=64KB --mem-budget=K --mem-budget=1G --mem-budget=65537M
    --mem-budget=67108865K --mem-budget=99999999999999999999K "--mem-budget= 1K"
    --frobnicate --vcpus --help=yes stray-argument
    # strtoull/strtod skip leading blanks and strtoull negates after them: " -5" was seed 2^64-5
    "--seed= -5" "--vcpus= 3" "--seconds= 1" "--devices=\t7"
    # decimal only: base 0 read 010 as 8 and 0x10 as 16
    --vcpus=0x10 --devices=1e3 --seconds=0x1p0)
foreach(args IN LISTS bad_lines)
  set(shown "${args}")
  execute_process(COMMAND "${DEMO}" ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err TIMEOUT 30)
  if(NOT rc EQUAL 2)
    message(FATAL_ERROR "vmres-demo ${shown}: exit status '${rc}', expected 2\n${out}${err}")
  endif()
  if(NOT err MATCHES "vmres-demo: |unrecognized option|requires an argument")
    message(FATAL_ERROR "vmres-demo ${shown}: no reason on stderr:\n${err}")
  endif()
  if(NOT out STREQUAL "")
    message(FATAL_ERROR "vmres-demo ${shown}: ran anyway:\n${out}")
  endif()
endforeach()
execute_process(COMMAND "${DEMO}" --help RESULT_VARIABLE rc OUTPUT_VARIABLE out TIMEOUT 30)
if(NOT rc EQUAL 0 OR NOT out MATCHES "Usage: vmres-demo" OR NOT out MATCHES "--hotplug-threads")
  message(FATAL_ERROR "vmres-demo --help: exit status '${rc}', output:\n${out}")
endif()
list(LENGTH bad_lines n)
message(STATUS "vmres-demo refused ${n} bad command lines; --help works")
