# ZooKeeper support in rangekv_common: the session wrapper over the C client
# (libzookeeper_mt), the watch channel (own wire-protocol client for
# persistent recursive watches) and the level-triggered reconciler.
# Included from common/CMakeLists.txt; ZOOKEEPER_* come from the top level.
if(NOT ZOOKEEPER_INCLUDE_DIR OR NOT ZOOKEEPER_LIBRARY)
  message(FATAL_ERROR
    "ZooKeeper C client not found (zookeeper/zookeeper.h: '${ZOOKEEPER_INCLUDE_DIR}', "
    "libzookeeper_mt: '${ZOOKEEPER_LIBRARY}'). On Debian/Ubuntu: "
    "apt-get install libzookeeper-mt-dev")
endif()

target_sources(rangekv_common PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/zk/callback_gate.cc
  ${CMAKE_CURRENT_LIST_DIR}/zk/connect_string.cc
  ${CMAKE_CURRENT_LIST_DIR}/zk/errors.cc
  ${CMAKE_CURRENT_LIST_DIR}/zk/jute.cc
  ${CMAKE_CURRENT_LIST_DIR}/zk/reconciler.cc
  ${CMAKE_CURRENT_LIST_DIR}/zk/session.cc
  ${CMAKE_CURRENT_LIST_DIR}/zk/watch_channel.cc
  ${CMAKE_CURRENT_LIST_DIR}/zk/watch_protocol.cc)
target_include_directories(rangekv_common PUBLIC ${ZOOKEEPER_INCLUDE_DIR})
target_link_libraries(rangekv_common PUBLIC ${ZOOKEEPER_LIBRARY} Boost::boost)
