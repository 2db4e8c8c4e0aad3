# Prometheus metrics in rangekv_common (common/metrics.h): a facade over
# prometheus-cpp's core and its pull Exposer (civetweb HTTP server).
# Included from common/CMakeLists.txt.
find_package(prometheus-cpp CONFIG REQUIRED)

target_sources(rangekv_common PRIVATE ${CMAKE_CURRENT_LIST_DIR}/src/metrics.cc)
target_link_libraries(rangekv_common PRIVATE prometheus-cpp::pull)
