# Serving sources (Asio server, connections, request handler, node, routing)
# and the cluster side (ZooKeeper membership, map reading, metrics).
list(APPEND RANGEKV_KVNODE_SERVER_SRCS
  ${CMAKE_CURRENT_SOURCE_DIR}/cluster_member.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/connection.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/connection_manager.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/data_dir.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/map_reader.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/metrics.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/node.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/node_options.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/range_slot.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/replication/follower.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/replication/leader.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/replication/replicator.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/request_handler.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/routing.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/server.cc)
