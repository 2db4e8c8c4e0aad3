# kvbench: closed-loop load generator over the client library's async API.
add_executable(kvbench
  ${CMAKE_CURRENT_SOURCE_DIR}/kvbench.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/key_chooser.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/latency_histogram.cc)
target_include_directories(kvbench PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(kvbench PRIVATE rangekv::client Threads::Threads)

# pingpong: the loopback TCP round trip, the floor under any request.
add_executable(pingpong
  ${CMAKE_CURRENT_SOURCE_DIR}/pingpong.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/latency_histogram.cc)
target_include_directories(pingpong PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(pingpong PRIVATE Threads::Threads)

# failover_probe: writes one key per range in a loop and logs each write
# (scripts/bench-failover).
add_executable(failover_probe ${CMAKE_CURRENT_SOURCE_DIR}/failover_probe.cc)
target_include_directories(failover_probe PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(failover_probe PRIVATE rangekv::client Threads::Threads)
