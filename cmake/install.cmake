# Install rules and the CMake package of the rangekv client library.
#
# `cmake --install <build> --prefix P` installs:
#
#   | path                                   | what                                 |
#   |----------------------------------------|--------------------------------------|
#   | P/include/rangekv/{client,cluster_info, | the public headers (no Asio, Cap'n   |
#   |   status}.h                            | Proto or ZooKeeper types)            |
#   | P/lib/librangekv_client.a              | the client (static)                  |
#   | P/lib/librangekv_{common,net,zk}.a     | what the client is built on          |
#   | P/lib/cmake/rangekv/                   | rangekvConfig.cmake, version, targets|
#
# A consumer writes find_package(rangekv REQUIRED) and
# target_link_libraries(app PRIVATE rangekv::client); the exported targets
# carry the rest of the link line (rangekv::common, rangekv::net,
# rangekv::zk, Cap'n Proto, libzookeeper_mt, Threads), found again by
# rangekvConfig.cmake. Metrics (prometheus-cpp) are not part of it: only
# the servers link rangekv_metrics.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(RANGEKV_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/rangekv)

set_target_properties(rangekv_client PROPERTIES EXPORT_NAME client)
set_target_properties(rangekv_common PROPERTIES EXPORT_NAME common)
set_target_properties(rangekv_net PROPERTIES EXPORT_NAME net)
set_target_properties(rangekv_zk PROPERTIES EXPORT_NAME zk)

install(TARGETS rangekv_client rangekv_common rangekv_net rangekv_zk
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
