# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Finds cmocka through pkg-config. Defines CMocka_FOUND and cmocka::cmocka.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(VMRES_CMOCKA QUIET IMPORTED_TARGET cmocka)
endif()
if(NOT VMRES_CMOCKA_FOUND)
  if(CMocka_FIND_REQUIRED)
    message(FATAL_ERROR "cmocka (pkg-config cmocka) not found: install the Debian package "
                        "'libcmocka-dev', or configure with -DVMRES_BUILD_TESTS=OFF")
  endif()
  set(CMocka_FOUND FALSE)
  return()
endif()
set(CMocka_FOUND TRUE)
if(NOT TARGET cmocka::cmocka)
  add_library(cmocka::cmocka INTERFACE IMPORTED)
  target_link_libraries(cmocka::cmocka INTERFACE PkgConfig::VMRES_CMOCKA)
endif()
