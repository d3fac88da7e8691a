# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# cmake --install: headers, the library, a CMake package and vmres.pc.
include(CMakePackageConfigHelpers)
set(VMRES_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/vmres")

install(TARGETS vmres EXPORT vmresTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/vmres DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
install(FILES "${PROJECT_BINARY_DIR}/include/vmres/version.h"
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/vmres)

install(EXPORT vmresTargets NAMESPACE vmres:: DESTINATION ${VMRES_CMAKE_DIR})
configure_package_config_file(cmake/vmresConfig.cmake.in
  "${PROJECT_BINARY_DIR}/vmresConfig.cmake" INSTALL_DESTINATION ${VMRES_CMAKE_DIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/vmresConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/vmresConfig.cmake"
              "${PROJECT_BINARY_DIR}/vmresConfigVersion.cmake"
              cmake/FindURCU.cmake cmake/FindCK.cmake
        DESTINATION ${VMRES_CMAKE_DIR})

# Relocatable: prefix is found from the .pc file's own folder.
file(RELATIVE_PATH VMRES_PC_RELPREFIX "/root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/root")
string(REGEX REPLACE "/$" "" VMRES_PC_RELPREFIX "${VMRES_PC_RELPREFIX}")
configure_file(cmake/vmres.pc.in "${PROJECT_BINARY_DIR}/vmres.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/vmres.pc" DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
