# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# The resource layer: kinds, the default layout, the system allocator.
list(APPEND VMRES_SOURCES
     src/resource.c
     src/system.c
     src/system_batch.c
     src/system_reserve.c)
