# Serving sources (Asio server, connections, request handler, node).
list(APPEND RANGEKV_KVNODE_SERVER_SRCS
  ${CMAKE_CURRENT_SOURCE_DIR}/connection.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/connection_manager.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/data_dir.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/node.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/node_options.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/request_handler.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/server.cc)
