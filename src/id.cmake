# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# The lock-free ID allocator (include/vmres/id.h, docs/design.md, "The ID allocator").
list(APPEND VMRES_SOURCES src/id.c src/id_index.c src/id_check.c)
# Under TSAN the double-width CAS is a 16-byte __atomic builtin, which clang
# only compiles inline (as TSAN's __tsan_atomic128_*) with cmpxchg16b enabled.
if(VMRES_SANITIZE STREQUAL "thread")
  set_source_files_properties(src/id.c src/id_index.c src/id_check.c
                              PROPERTIES COMPILE_OPTIONS "-mcx16")
endif()
