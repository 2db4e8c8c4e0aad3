# Install rules and the CMake package of the rangekv client library.
#
# `cmake --install <build> --prefix P` installs:
#
#   | path                                   | what                                 |
#   |----------------------------------------|--------------------------------------|
#   | P/include/rangekv/{client,cluster_info, | the public headers (no Asio, Cap'n   |
#   |   status}.h                            | Proto or ZooKeeper types)            |
#   | P/lib/librangekv_client.a              | the client (static)                  |
#   | P/lib/librangekv_common.a              | what the client is built on          |
#   | P/lib/cmake/rangekv/                   | rangekvConfig.cmake, version, targets|
#
# A consumer writes find_package(rangekv REQUIRED) and
# target_link_libraries(app PRIVATE rangekv::client); the exported targets
# carry the rest of the link line (rangekv::common, Cap'n Proto,
# libzookeeper_mt, Threads), found again by rangekvConfig.cmake.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(RANGEKV_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/rangekv)

set_target_properties(rangekv_client PROPERTIES EXPORT_NAME client)
set_target_properties(rangekv_common PROPERTIES EXPORT_NAME common)

install(TARGETS rangekv_client rangekv_common
  EXPORT rangekvTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES
  ${PROJECT_SOURCE_DIR}/client/include/rangekv/client.h
  ${PROJECT_SOURCE_DIR}/client/include/rangekv/cluster_info.h
  ${PROJECT_SOURCE_DIR}/common/include/rangekv/status.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rangekv)
install(EXPORT rangekvTargets
  NAMESPACE rangekv::
  DESTINATION ${RANGEKV_CMAKE_DIR})

# rangekv_common links prometheus-cpp privately when metrics are built; a
# static library's private dependencies still reach the consumer's link line.
# (Its imported target is scoped to common/, so look at the link list.)
get_target_property(_rangekv_common_libs rangekv_common LINK_LIBRARIES)
if("${_rangekv_common_libs}" MATCHES "prometheus-cpp::")
  set(RANGEKV_NEEDS_PROMETHEUS ON)
else()
  set(RANGEKV_NEEDS_PROMETHEUS OFF)
endif()

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/rangekvConfig.cmake.in
  ${PROJECT_BINARY_DIR}/rangekvConfig.cmake
  INSTALL_DESTINATION ${RANGEKV_CMAKE_DIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/rangekvConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/rangekvConfig.cmake
  ${PROJECT_BINARY_DIR}/rangekvConfigVersion.cmake
  DESTINATION ${RANGEKV_CMAKE_DIR})
