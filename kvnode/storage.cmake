# Storage engine sources (WAL, snapshots, RangeStore).
list(APPEND RANGEKV_KVNODE_STORAGE_SRCS
  ${CMAKE_CURRENT_SOURCE_DIR}/file_util.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/wal_format.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/wal.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/wal_read.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/epoch_history.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/snapshot.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/range_store.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/range_store_log.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/range_store_recovery.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/range_store_snapshot.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/range_store_replication.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/range_store_truncate.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/range_store_export.cc)
