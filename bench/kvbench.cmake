# kvbench: closed-loop load generator over the client library's async API.
add_executable(kvbench
  ${CMAKE_CURRENT_SOURCE_DIR}/kvbench.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/latency_histogram.cc)
target_include_directories(kvbench PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(kvbench PRIVATE rangekv::client Threads::Threads)
