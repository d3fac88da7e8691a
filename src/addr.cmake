# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
list(APPEND VMRES_SOURCES src/addr.c src/addr_tree.c src/addr_fit.c src/addr_read.c src/addr_check.c)
