# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# vmres_add_test(<name> <source>...): a cmocka test executable registered with ctest.
# Tests named stress_* get the "stress" label and a longer timeout; sanitized builds longer ones.
function(vmres_add_test name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE vmres_internal_test vmres_testsupport cmocka::cmocka)
  target_compile_options(${name} PRIVATE ${VMRES_WARNING_FLAGS})
  add_test(NAME ${name} COMMAND ${name})
  set(env "CMOCKA_MESSAGE_OUTPUT=stdout")
  if(VMRES_SANITIZE STREQUAL "thread")
    list(APPEND env "TSAN_OPTIONS=halt_on_error=1:ignore_noninstrumented_modules=1:second_deadlock_stack=1")
  elseif(VMRES_SANITIZE)
    list(APPEND env "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
                    "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
  endif()
  # Sanitized builds run 3-10x slower: under TSAN on a loaded 2-CPU machine
  # test_addr_exhaustive and test_addr_model took 170-190 s. Their limit is
  # 360 s: a hang still ends CI in minutes.
  if(VMRES_SANITIZE)
    set(unit_timeout 360)
    set(stress_timeout 360)
  else()
    set(unit_timeout 120)
    set(stress_timeout 180)
  endif()
  if(name MATCHES "^stress_")
    set_tests_properties(${name} PROPERTIES LABELS "stress" TIMEOUT ${stress_timeout}
                         ENVIRONMENT "${env}")
  else()
    set_tests_properties(${name} PROPERTIES LABELS "unit" TIMEOUT ${unit_timeout}
                         ENVIRONMENT "${env}")
  endif()
endfunction()
